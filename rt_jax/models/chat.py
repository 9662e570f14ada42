"""Prompts in a tokenizer's chat template, for instruct checkpoints used zero-shot or as teachers.

Fine-tune-CoT trains and evaluates on the paper's plain prompts; an instruct model asked
zero-shot answers far better when the question arrives as a user turn of the template it was
tuned on. The template already holds the special tokens it needs (a Llama 3 template starts with
<|begin_of_text|>), so encode its text with add_special_tokens=False: `chat_prompt_ids` does.
"""

from rt_jax.errors import UserError


def _messages(prompt: str, system: str | None) -> list[dict]:
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]


def has_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def _check_template(tokenizer) -> None:
    if not has_template(tokenizer):
        source = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
        raise UserError(
            f"tokenizer {source}: has no chat template (chat_template in tokenizer_config.json or "
            "chat_template.jinja); use the plain prompt format with this checkpoint"
        )


def conversation_prompt(tokenizer, messages: list[dict]) -> str:
    """A conversation of {"role", "content"} messages (a chat API's request) in the tokenizer's chat
    template, ending where the next assistant turn begins."""
    _check_template(tokenizer)
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def conversation_ids(tokenizer, messages: list[dict]) -> list[int]:
    """Token ids of `conversation_prompt`, with exactly the special tokens the template writes."""
    return list(tokenizer(conversation_prompt(tokenizer, messages), add_special_tokens=False)["input_ids"])


def chat_prompt(tokenizer, prompt: str, system: str | None = None) -> str:
    """`prompt` as the user turn (after an optional system turn) of the tokenizer's chat template,
    ending where the assistant's answer begins."""
    return conversation_prompt(tokenizer, _messages(prompt, system))


def chat_prompt_ids(tokenizer, prompt: str, system: str | None = None) -> list[int]:
    """Token ids of `chat_prompt`, with exactly the special tokens the template writes."""
    return conversation_ids(tokenizer, _messages(prompt, system))
