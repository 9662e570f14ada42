"""Small random transformers models and the same weights loaded into rt_jax."""

import pytest
import torch
import transformers

from rt_jax import models

TINY = dict(vocab_size=96)


def _pair(tmp_path_factory, name, hf_model):
    directory = tmp_path_factory.mktemp(name)
    hf_model.save_pretrained(directory)
    return hf_model.eval(), models.from_pretrained(directory)


@pytest.fixture(scope="session")
def gpt2_pair(tmp_path_factory):
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        n_positions=64, n_embd=32, n_layer=2, n_head=4, initializer_range=0.1, bos_token_id=1, eos_token_id=2, **TINY
    )
    return _pair(tmp_path_factory, "gpt2", transformers.GPT2LMHeadModel(config))


def _t5_config(v11: bool):
    extra = dict(feed_forward_proj="gated-gelu", tie_word_embeddings=False) if v11 else {}
    return transformers.T5Config(
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=20,
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
        **TINY,
        **extra,
    )


@pytest.fixture(scope="session")
def t5_pair(tmp_path_factory):
    torch.manual_seed(1)
    return _pair(tmp_path_factory, "t5", transformers.T5ForConditionalGeneration(_t5_config(False)))


@pytest.fixture(scope="session")
def t5_v11_pair(tmp_path_factory):
    torch.manual_seed(2)
    return _pair(tmp_path_factory, "t5_v11", transformers.T5ForConditionalGeneration(_t5_config(True)))


@pytest.fixture(scope="session")
def llama_pair(tmp_path_factory):
    """Grouped-query attention (2 KV heads for 4 query heads), an untied head, llama3 RoPE."""
    torch.manual_seed(3)
    config = transformers.LlamaConfig(
        hidden_size=32,
        intermediate_size=48,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
        initializer_range=0.1,
        tie_word_embeddings=False,
        rope_parameters=dict(
            rope_type="llama3",
            rope_theta=10000.0,
            factor=8.0,
            low_freq_factor=0.25,
            high_freq_factor=4.0,
            original_max_position_embeddings=32,
        ),
        bos_token_id=1,
        eos_token_id=2,
        **TINY,
    )
    return _pair(tmp_path_factory, "llama", transformers.LlamaForCausalLM(config))
