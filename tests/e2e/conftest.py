"""Tiny from-scratch students with the byte-level tokenizer, saved as checkpoint directories
(what a user's local GPT-2 / T5 / Llama checkpoint looks like to rt_jax)."""

import pytest
import transformers

from rt_jax import models
from rt_jax.models.byte_tokenizer import ByteTokenizer


def tiny_gpt2_config(n_positions=2560):
    tok = ByteTokenizer()
    return transformers.GPT2Config(
        vocab_size=tok.vocab_size,
        n_positions=n_positions,
        n_embd=32,
        n_layer=2,
        n_head=4,
        bos_token_id=tok.eos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )


def tiny_t5_config():
    tok = ByteTokenizer()
    return transformers.T5Config(
        vocab_size=tok.vocab_size,
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=20,
        feed_forward_proj="gated-gelu",
        tie_word_embeddings=False,
        decoder_start_token_id=tok.pad_token_id,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
    )


def tiny_llama_config():
    """Grouped-query attention (1 KV head for 4 query heads), tied head, scanned layers."""
    tok = ByteTokenizer()
    return transformers.LlamaConfig(
        vocab_size=tok.vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=1,
        max_position_embeddings=2560,
        tie_word_embeddings=True,
        bos_token_id=tok.eos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
    )


@pytest.fixture(scope="session")
def tiny_gpt2_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny_gpt2")
    models.save_pretrained(models.from_config(tiny_gpt2_config(), seed=0, tokenizer=ByteTokenizer()), directory)
    return directory


@pytest.fixture(scope="session")
def tiny_t5_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny_t5")
    models.save_pretrained(
        models.from_config(tiny_t5_config(), seed=0, tokenizer=ByteTokenizer(add_eos=True)), directory
    )
    return directory


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tiny_llama")
    models.save_pretrained(models.from_config(tiny_llama_config(), seed=0, tokenizer=ByteTokenizer()), directory)
    return directory
