"""Prompt and target templates of the paper's methods, for decoder-only and encoder-decoder
students, with the answer prefix each template is scored with. Which template a method uses is
rt_jax.methods' (`methods.parse("ft_cot").template == "ft_cot_token"`).

The strings follow reasoning-teacher's `data/format.py` (open-source students) and Kojima et
al.'s `main.py` (Zero-shot-CoT). Question, answer and rationale are stripped first, as the
original does. Targets carry no end marker: decoder students learn to stop at EOS, which the
tokenization step appends (T5 tokenizers append it themselves); the OpenAI fine-tuning path of
the original ends targets with " END" (`STOP_PHRASE`) and stops generation there.

    fmt = format_example("ft_cot_token", DECODER, question="2+3?", answer="5", rationale="2+3=5.")
    fmt.prompt == "2+3? ###";  fmt.target == " 2+3=5. --> 5"
    score(task, completion, gold, answer_prefix=answer_prefix("ft_cot_token"))
"""

import dataclasses
import functools
import json
import pathlib

from rt_jax.errors import UserError
from rt_jax.tasks.registry import task_info

DECODER = "decoder"
ENCODER_DECODER = "encoder_decoder"
MODEL_TYPES = (DECODER, ENCODER_DECODER)

STOP_PHRASE = "END"  # the original's OpenAI stop string; targets end with " END" when asked
COT_TRIGGER = "Let's think step by step."
ZS_COT_REASONING_MAX_TOKENS = 128  # Kojima et al.: reasoning step
ZS_COT_ANSWER_MAX_TOKENS = 32  # ... and answer-extraction step
FS_COT_ANSWER_PREFIX = "The answer is"


MT_LABEL, MT_RATIONALE = "mt_label", "mt_rationale"  # multi-task templates (methods `*_mt`)
# Prompted with their own functions (zs_cot_*_prompt, fs_cot_prompt), not format_example.
PROMPTING_TEMPLATES = ("zs_cot", "fs_cot")


@dataclasses.dataclass(frozen=True)
class Template:
    """Format strings over {question}, {answer}, {rationale}; a target of None means the
    template is for inference only. `answer_prefix` is what scoring looks for."""

    name: str
    decoder: tuple[str, str | None] | None
    encoder_decoder: tuple[str, str | None] | None
    answer_prefix: str | None = None


TEMPLATES: dict[str, Template] = {
    t.name: t
    for t in [
        # Zero-shot: the encoder-decoder prompt follows the SQuAD format T5 was trained with.
        Template("zs", ("Q: {question}\n\nA:", None), ("question: {question}", None)),
        Template("ft_token", ("{question} ###", " {answer}"), ("{question}", "{answer}")),
        Template("ft_natural", ("Q: {question}\n\nA:", " {answer}"), ("Q: {question}", "{answer}")),
        Template(
            "ft_cot_token",
            ("{question} ###", " {rationale} --> {answer}"),
            ("{question}", "{rationale} --> {answer}"),
            answer_prefix="-->",
        ),
        # The original scores this template with "Therefore, the answer is" (with a comma), which its
        # own target never contains, so every prediction fell back to the last candidate; we use the
        # target's own words. Decoder-only, as in the original.
        Template(
            "ft_cot_natural",
            ("Q: {question}\n\nA: Let's think step by step.\n\n", " {rationale}\n\nTherefore the answer is {answer}"),
            None,
            answer_prefix="Therefore the answer is",
        ),
        # Multi-task training (Hsieh et al. 2023, "Distilling Step-by-Step"): the task prefix tells
        # the student which output to produce; at test time it is prompted with [label] and answers
        # directly. Decoder-only students also get ft's " ###" so they know where the question ends.
        Template(MT_LABEL, ("[label] {question} ###", " {answer}"), ("[label] {question}", "{answer}")),
        Template(
            MT_RATIONALE, ("[rationale] {question} ###", " {rationale}"), ("[rationale] {question}", "{rationale}")
        ),
    ]
}


@dataclasses.dataclass(frozen=True)
class Formatted:
    prompt: str
    target: str | None


def answer_prefix(template: str) -> str | None:
    """What `score(..., answer_prefix=...)` looks for after completions of this template."""
    if template == "fs_cot":
        return FS_COT_ANSWER_PREFIX
    if template == "zs_cot":
        return None
    return _template(template).answer_prefix


def _template(name: str) -> Template:
    try:
        return TEMPLATES[name]
    except (KeyError, TypeError):
        known = ", ".join(list(TEMPLATES) + list(PROMPTING_TEMPLATES))
        raise UserError(f"unknown template {name!r}; expected one of {known}") from None


def model_type(is_encoder_decoder: bool) -> str:
    """The template form of a student: ENCODER_DECODER or DECODER."""
    return ENCODER_DECODER if is_encoder_decoder else DECODER


def _check_model_type(model_type: str) -> None:
    if model_type not in MODEL_TYPES:
        raise UserError(f"unknown model type {model_type!r}; expected one of {', '.join(MODEL_TYPES)}")


def format_example(
    template: str,
    model_type: str,
    question: str,
    answer: str | None = None,
    rationale: str | None = None,
    *,
    stop_phrase: bool = False,
) -> Formatted:
    """Prompt (and target, when an answer is given) of a zs / ft / ft_cot style template (a
    method's is rt_jax.methods'). Zero-shot-CoT and Few-shot-CoT prompts: `zs_cot_*_prompt`,
    `fs_cot_prompt`."""
    _check_model_type(model_type)
    if template in PROMPTING_TEMPLATES:
        raise UserError(
            f"template {template!r} is prompted with zs_cot_reasoning_prompt / zs_cot_answer_prompt / "
            "fs_cot_prompt, not format_example"
        )
    formats = getattr(_template(template), model_type)
    if formats is None:
        raise UserError(f"template {template} has no {model_type} form; expected a {DECODER} student")
    prompt_format, target_format = formats
    fields = {"question": question.strip(), "answer": (answer or "").strip(), "rationale": (rationale or "").strip()}
    if "{rationale}" in (target_format or "") and answer is not None and rationale is None:
        raise UserError(f"template {template} needs a rationale for its target")
    target = None
    if answer is not None and target_format is not None:
        target = target_format.format(**fields) + (" " + STOP_PHRASE if stop_phrase else "")
    return Formatted(prompt_format.format(**fields), target)


def zs_cot_reasoning_prompt(question: str) -> str:
    """Zero-shot-CoT step 1 (Kojima et al.): the model continues with its rationale."""
    return f"Q: {question}\nA: {COT_TRIGGER}"  # unstripped, as Kojima et al. sent it


def zs_cot_answer_prompt(task: str, reasoning_prompt: str, rationale: str) -> str:
    """Zero-shot-CoT step 2: step 1's prompt and raw completion, a space, the task's trigger
    (e.g. "\\nTherefore, the answer (arabic numerals) is"). Score the continuation with
    `kojima_cleanse` (Kojima's rule) or `score(..., answer_prefix=None)` (first candidate)."""
    return reasoning_prompt + rationale + " " + task_info(task).trigger


@functools.lru_cache(maxsize=4)
def _few_shot_prompts(path: str) -> dict:
    try:
        data = json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(
            f"{path}: few-shot prompt file not found; expected reasoning-teacher's "
            "few_shot_cot_prompts.json under <data_dir>/splits/"
        ) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected {{task: {{prompt, sample_indices, comment}}}}")
    return data


def fs_cot_exemplars(task: str, data_dir) -> str:
    """The Few-shot-CoT exemplar text of `task` (none exists for tracking_shuffled_objects)."""
    task_info(task)
    path = pathlib.Path(data_dir) / "splits" / "few_shot_cot_prompts.json"
    entry = _few_shot_prompts(str(path)).get(task)
    if not isinstance(entry, dict) or not isinstance(entry.get("prompt"), str):
        raise UserError(
            f"{path}: no Few-shot-CoT prompt for {task}; expected an entry "
            '{"prompt": str, ...} (the paper has none for tracking_shuffled_objects)'
        )
    return entry["prompt"]


def fs_cot_prompt(task: str, question: str, data_dir) -> str:
    """Few-shot-CoT prompt, the same for both model types: exemplars, then `\\nQ: ...\\nA:`."""
    return f"{fs_cot_exemplars(task, data_dir)}\nQ: {question.strip()}\nA:"
