"""config.eval.chat_template: a prompting baseline's prompts as the user turn of the student
tokenizer's chat template (rt_jax.models.chat), through rt_jax.evaluate; refused before any work
without a template, and for fine-tuning methods (they keep the paper's plain format)."""

import types

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from rt_jax import decoding, evaluation, formats
from rt_jax.configs import paper
from rt_jax.errors import UserError
from rt_jax.evaluation import method as method_lib
from rt_jax.evaluation import predictions
from rt_jax.models import chat
from rt_jax.train import loop

VOCAB = ["<unk>", "<s>", "<|im_end|>", "<|im_start|>", "user", "assistant", "Q:", "A:", "heads", "up?"]
CHATML = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }} {{ m['content'] }}<|im_end|> {% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant {% endif %}"
)


def chatml_tokenizer(template=CHATML, add_bos=False):
    """Word-level; with add_bos, the tokenizer adds BOS and the template writes it too (Llama 3)."""
    inner = Tokenizer(models.WordLevel({w: i for i, w in enumerate(VOCAB)}, unk_token="<unk>"))
    inner.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    if add_bos:
        inner.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
        template = "{{ bos_token }}" + template
    specials = dict(unk_token="<unk>", bos_token="<s>", eos_token="<|im_end|>")
    return PreTrainedTokenizerFast(tokenizer_object=inner, chat_template=template, **specials)


def _examples(data_dir, n=3):
    config = paper.get_config("coin_flip,zs,smollm2-135m")
    config.data_dir = str(data_dir)
    return evaluation.held_out_examples(config, n)


@pytest.mark.parametrize("add_bos", [False, True])
def test_zero_shot_prompts_are_the_templates_user_turn_with_its_exact_ids(data_dir, add_bos):
    tok = chatml_tokenizer(add_bos=add_bos)
    loaded = types.SimpleNamespace(is_encoder_decoder=False, tokenizer=tok)
    examples = _examples(data_dir)
    plain, prefix = evaluation.prompts_for("zs", "coin_flip", examples, loaded, data_dir)
    wrapped, chat_prefix = evaluation.prompts_for("zs", "coin_flip", examples, loaded, data_dir, chat_template=True)
    assert plain == [formats.format_example("zs", formats.DECODER, ex.question).prompt for ex in examples]
    assert chat_prefix == prefix
    for p, w in zip(plain, wrapped):
        assert w == f"<|im_start|>user {p}<|im_end|> <|im_start|>assistant "
        # what the decoder encodes (with the tokenizer's own special tokens): the template's ids, one BOS at most
        assert tok.encode(w) == chat.chat_prompt_ids(tok, p)


def test_zero_shot_cot_asks_in_the_template_and_answers_after_the_rationale(monkeypatch, data_dir, tmp_path):
    tok = chatml_tokenizer()
    loaded = types.SimpleNamespace(is_encoder_decoder=False, tokenizer=tok)
    examples, seen = _examples(data_dir), {}

    def decode(loaded, params, prompts, settings, mesh=None):
        seen["reasoning"] = list(prompts)
        return [types.SimpleNamespace(text=" It flips twice.")] * len(prompts)

    def evaluate_prompts(loaded, params, task, examples, prompts, *args, **kwargs):
        seen["answers"] = list(prompts)

    monkeypatch.setattr(method_lib, "decode", decode)
    monkeypatch.setattr(method_lib, "evaluate_prompts", evaluate_prompts)
    settings = decoding.DecodeConfig()
    evaluation.evaluate_method(loaded, None, "coin_flip", examples, "zs_cot", settings, tmp_path, 0, chat_template=True)
    for ex, reasoning, answer in zip(examples, seen["reasoning"], seen["answers"]):
        assert reasoning == chat.chat_prompt(tok, formats.zs_cot_reasoning_prompt(ex.question))
        assert answer == formats.zs_cot_answer_prompt("coin_flip", reasoning, " It flips twice.")


def save_student(directory, tokenizer):
    """A one-layer random Llama with `tokenizer`, in a folder of its own (a tokenizer saved over
    another would leave the other's chat_template.jinja behind)."""
    config = LlamaConfig(
        vocab_size=len(VOCAB), hidden_size=16, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def _config(data_dir, model_path, method="zs"):
    c = paper.get_config(f"coin_flip,{method},smollm2-135m")
    c.model_path, c.data_dir = str(model_path), str(data_dir)
    c.eval.chat_template, c.eval.max_new_tokens = True, 2
    return c


def test_the_evaluate_command_decodes_the_wrapped_prompts(data_dir, tmp_path):
    config = _config(data_dir, save_student(tmp_path / "student", chatml_tokenizer()))
    result = evaluation.run_evaluation(config, tmp_path / "run", limit=2)
    assert result["epochs"][0]["num_test"] == 2
    saved = predictions.read_predictions(
        tmp_path / "run" / "predictions", config.student, predictions.predictions_method("zs", 0), "coin_flip"
    )
    for ex in _examples(data_dir, 2):
        (record,) = saved[int(ex.sample_index)]
        assert record.reasoning_prompt.startswith("<|im_start|>user Q: ")
        assert record.reasoning_prompt.endswith("<|im_end|> <|im_start|>assistant ")


def test_a_tokenizer_without_a_template_is_refused_before_any_work(data_dir, tmp_path):
    student = save_student(tmp_path / "student", chatml_tokenizer(template=None))
    with pytest.raises(UserError, match="has no chat template") as e:
        evaluation.run_evaluation(_config(data_dir, student), tmp_path / "run")
    assert "\n" not in str(e.value)
    assert not (tmp_path / "run" / "config.json").exists() and not (tmp_path / "run" / "predictions").exists()


def test_fine_tuning_with_the_chat_template_is_refused_before_training(data_dir, tmp_path):
    config = _config(data_dir, tmp_path / "no_such_student", method="ft_cot")
    with pytest.raises(UserError, match="chat_template: for the prompting baselines .* 'ft_cot' trains"):
        loop.train(config, tmp_path / "run")
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())
