"""Tokenizers for data-pipeline tests, built offline from the real MultiArith questions.

`gpt2_like`: byte-level BPE with "<|endoftext|>" as EOS/pad and no special tokens added
(GPT-2's policy). `t5_like`: the same vocabulary, but "</s>" appended to every text (T5's policy).
Both are transformers PreTrainedTokenizerFast, so the code path is the one real students use.
"""

import json

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast


def multiarith_rows(data_dir):
    path = data_dir / "raw" / "kojima_zero_shot_cot" / "dataset" / "MultiArith" / "MultiArith.json"
    return json.loads(path.read_text())


def _train_bpe(texts, specials):
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(texts, trainer)
    return tok


@pytest.fixture(scope="session")
def multiarith_raw(data_dir):
    """The raw MultiArith rows (questions with their leading/trailing space, lSolutions)."""
    return multiarith_rows(data_dir)


@pytest.fixture(scope="session")
def multiarith_texts(multiarith_raw):
    return [r["sQuestion"].strip() for r in multiarith_raw]


@pytest.fixture(scope="session")
def gpt2_like(multiarith_texts):
    tok = _train_bpe(multiarith_texts, ["<|endoftext|>"])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>", bos_token="<|endoftext|>"
    )


@pytest.fixture(scope="session")
def t5_like(multiarith_texts):
    tok = _train_bpe(multiarith_texts, ["<pad>", "</s>"])
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", tok.token_to_id("</s>"))]
    )
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="</s>", pad_token="<pad>")
