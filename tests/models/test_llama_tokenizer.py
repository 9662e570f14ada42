"""Llama-family tokenizers: EOS required, EOS pads when there is no pad token, BOS as the
tokenizer adds it, prompts in the chat template."""

import collections

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers, processors
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from rt_jax import models as rt_models
from rt_jax.data.tokenize import tokenize_pairs
from rt_jax.errors import UserError
from rt_jax.models import chat, llama

WORDS = ["<unk>", "<s>", "</s>", "[INST]", "[/INST]", "hello", "world", "sys"]
TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}[INST] {{ m['content'] }} [/INST]"
    "{% else %}{{ m['content'] }} {% endif %}{% endfor %}"
)


def word_tokenizer(eos=True, add_bos=False, template=None):
    inner = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    inner.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    if add_bos:
        inner.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    specials = dict(unk_token="<unk>", bos_token="<s>", **({"eos_token": "</s>"} if eos else {}))
    return PreTrainedTokenizerFast(tokenizer_object=inner, chat_template=template, **specials)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("llama_tok")
    config = LlamaConfig(
        vocab_size=len(WORDS), hidden_size=16, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(directory)
    return directory


def test_eos_pads_when_the_tokenizer_has_no_pad_token(model_dir):
    word_tokenizer().save_pretrained(model_dir)
    tokenizer = rt_models.from_pretrained(model_dir).tokenizer
    assert tokenizer.pad_token_id == tokenizer.eos_token_id == 2


def test_tokenizer_without_eos_is_refused_before_the_weights_are_read(model_dir, tmp_path):
    (tmp_path / "config.json").write_text((model_dir / "config.json").read_text())  # no weights at all
    word_tokenizer(eos=False).save_pretrained(tmp_path)
    with pytest.raises(UserError, match=f"{tmp_path}: the tokenizer has no EOS token"):
        rt_models.from_pretrained(tmp_path)


def test_training_puts_bos_once_at_the_start_exactly_when_the_tokenizer_would():
    pair = collections.namedtuple("Pair", "sample_index prompt target")(0, "hello", " world")
    for add_bos in (True, False):
        (ex,) = tokenize_pairs([pair], word_tokenizer(add_bos=add_bos), llama.FAMILY, max_length=16)
        assert ex.prompt_ids.tolist() == [1] * add_bos + [5]  # <s> hello
        assert ex.target_ids.tolist() == [6, 2]  # world </s>: no second BOS, EOS appended


def test_chat_prompt_is_the_user_turn_ending_at_the_answer():
    tokenizer = word_tokenizer(add_bos=True, template=TEMPLATE)
    assert chat.chat_prompt(tokenizer, "hello world") == "<s>[INST] hello world [/INST]"
    assert chat.chat_prompt(tokenizer, "hello", system="sys") == "<s>sys [INST] hello [/INST]"
    # the template writes BOS itself: a tokenizer that also adds one must not double it
    assert chat.chat_prompt_ids(tokenizer, "hello world") == [1, 3, 5, 6, 4]
    assert tokenizer(chat.chat_prompt(tokenizer, "hello world"))["input_ids"][:2] == [1, 1]


def test_chat_prompt_without_a_template_is_a_user_error():
    with pytest.raises(UserError, match="has no chat template"):
        chat.chat_prompt(word_tokenizer(), "hello")
