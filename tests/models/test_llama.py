"""The Llama family (llama, qwen2, mistral, qwen3) against transformers' PyTorch models, and the
cache / packing / remat / sharding paths against the plain forward."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
import transformers
from jax.sharding import PartitionSpec as P
from model_refs import (
    assert_packed_equals_one_by_one,
    assert_steps_equal_full_forward,
    left_padded_batch,
    perturb,
    torch_logits,
)

from rt_jax import models, parallel
from rt_jax.errors import UserError
from rt_jax.models import llama

BASE = dict(
    vocab_size=97,
    hidden_size=32,
    intermediate_size=40,
    num_hidden_layers=2,
    num_attention_heads=4,
    max_position_embeddings=64,
    rms_norm_eps=1e-5,
    bos_token_id=1,
    eos_token_id=2,
)
# With head_dim 8 the four wavelengths (2 pi, 63, 628, 6283) fall in all three llama3 regimes:
# kept (< 32 / 4), blended (between), divided by the factor (> 32 / 0.25).
LLAMA3_ROPE = dict(
    rope_type="llama3", factor=8.0, low_freq_factor=0.25, high_freq_factor=4.0, original_max_position_embeddings=32
)
# name -> (transformers config class, fields over BASE)
CONFIGS = {
    "llama_1kv_tied": ("LlamaConfig", dict(num_key_value_heads=1, tie_word_embeddings=True)),
    "llama_2kv_untied": ("LlamaConfig", dict(num_key_value_heads=2, tie_word_embeddings=False)),
    "llama3_rope": (
        "LlamaConfig",
        dict(num_key_value_heads=2, rope_parameters=dict(LLAMA3_ROPE, rope_theta=10000.0)),
    ),
    "linear_rope": ("LlamaConfig", dict(rope_parameters=dict(rope_type="linear", factor=2.0, rope_theta=10000.0))),
    "llama_biases_head_dim12": (
        "LlamaConfig",
        dict(num_key_value_heads=2, head_dim=12, attention_bias=True, mlp_bias=True, num_hidden_layers=3),
    ),
    "qwen2_biases": ("Qwen2Config", dict(num_key_value_heads=2, tie_word_embeddings=True)),
    "qwen2_sliding_layer": (
        "Qwen2Config",
        dict(num_key_value_heads=2, use_sliding_window=True, sliding_window=3, max_window_layers=1),
    ),
    "mistral_window": ("MistralConfig", dict(num_key_value_heads=1, sliding_window=4, head_dim=6)),
    "qwen3_qk_norm": (
        "Qwen3Config",
        dict(num_attention_heads=6, num_key_value_heads=3, head_dim=10, attention_bias=True),
    ),
}


def hf_config(name, **changes):
    cls, fields = CONFIGS[name]
    return getattr(transformers, cls)(**{**BASE, **fields, **changes})


def reference(name, seed=0, **changes):
    torch.manual_seed(seed)
    config = hf_config(name, **changes)
    return perturb(transformers.AutoModelForCausalLM.from_config(config), seed=seed).eval()


def loaded_pair(directory, name, seed=0, **options):
    ref = reference(name, seed)
    ref.save_pretrained(directory)
    return ref, models.from_pretrained(directory, **options)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_logits_match_transformers_with_left_padding(tmp_path, name):
    ref, loaded = loaded_pair(tmp_path, name)
    ids, mask = left_padded_batch(np.random.default_rng(0), (9, 3, 6), BASE["vocab_size"])
    positions = np.maximum(np.cumsum(mask, -1) - 1, 0)
    want = torch_logits(ref, input_ids=ids.astype(np.int64), attention_mask=mask, position_ids=positions)
    got = np.asarray(jax.jit(loaded.module.apply)({"params": loaded.params}, ids, mask))
    real = mask.astype(bool)
    assert got.shape == want.shape
    assert np.abs(got - want)[real].max() < 1e-4


def test_rope_frequencies_equal_transformers():
    """default, linear and llama3 (the three regimes: kept, blended, divided) against transformers'
    own rotary embedding module."""
    for name in ("llama_2kv_untied", "linear_rope", "llama3_rope"):
        config = hf_config(name)
        want = transformers.models.llama.modeling_llama.LlamaRotaryEmbedding(config).inv_freq.numpy()
        got = llama.rope_frequencies(config, config.head_dim)
        np.testing.assert_allclose(got, want, rtol=1e-6)
    scaled = llama.rope_frequencies(hf_config("llama3_rope"), 8) / llama.rope_frequencies(
        hf_config("llama3_rope", rope_parameters=dict(rope_type="default", rope_theta=10000.0)), 8
    )
    assert scaled[0] == 1.0 and 1 / 8 < scaled[1] < 1 and scaled[-1] == pytest.approx(1 / 8)


def test_transformers_4_rope_fields_are_read():
    """Old configs spell RoPE as rope_theta + rope_scaling (with "type" or "rope_type")."""

    class Old:
        rope_theta, rope_scaling = 5000.0, {"type": "linear", "factor": 4.0}

    want = 1.0 / 5000.0 ** (np.arange(0, 8, 2) / 8) / 4.0
    np.testing.assert_allclose(llama.rope_frequencies(Old(), 8), want, rtol=1e-6)


@pytest.fixture(scope="module")
def windowed(tmp_path_factory):
    """GQA with one KV head and a sliding window shorter than the test sequences."""
    return loaded_pair(tmp_path_factory.mktemp("mistral"), "mistral_window", seed=1)[1]


def test_prefill_and_steps_equal_full_forward(windowed):
    """Steps past the window (4): slots that left it are masked in the cache as in the forward."""
    ids, mask = left_padded_batch(np.random.default_rng(1), (9, 4), BASE["vocab_size"])
    cache = assert_steps_equal_full_forward(windowed.module, windowed.params, ids, mask, prompt=3, max_length=12)
    assert cache["k"].shape == (2, 2, 12, 1, 6)  # [B, L, S, KV heads, K]


def test_decoding_layout_gives_the_same_logits_and_cache(windowed):
    """decoding_params (per-layer arrays, what the decoder uses on XLA:CPU): the forward, the
    prefill and every step equal the stacked layout's (to float rounding: XLA fuses the two
    differently), with per-layer caches holding the same K/V."""
    per_layer = llama.LlamaLM.decoding_params(windowed.params)
    assert isinstance(per_layer["layers"], tuple) and len(per_layer["layers"]) == windowed.config.num_hidden_layers
    assert llama.LlamaLM.decoding_params(per_layer) is per_layer
    ids, mask = left_padded_batch(np.random.default_rng(4), (9, 4), BASE["vocab_size"])
    stacked = assert_steps_equal_full_forward(windowed.module, windowed.params, ids, mask, prompt=3, max_length=12)
    unrolled = assert_steps_equal_full_forward(windowed.module, per_layer, ids, mask, prompt=3, max_length=12)
    assert isinstance(unrolled, tuple) and unrolled[1]["k"].shape == (2, 12, 1, 6)  # [B, S, KV heads, K]
    for name in ("k", "v"):
        np.testing.assert_allclose(np.stack([c[name] for c in unrolled], 1), stacked[name], atol=1e-6)
    apply = jax.jit(windowed.module.apply)
    np.testing.assert_array_equal(
        apply({"params": per_layer}, ids, mask), apply({"params": windowed.params}, ids, mask)
    )


def test_packed_equals_one_by_one(windowed):
    rng = np.random.default_rng(2)
    seqs = [rng.integers(3, BASE["vocab_size"], n) for n in (4, 7, 2)]
    assert_packed_equals_one_by_one(windowed.module, windowed.params, seqs)


def test_remat_is_inside_the_scan_only_when_asked(windowed):
    ids, mask = left_padded_batch(np.random.default_rng(3), (5, 4), BASE["vocab_size"])
    remat = models.build_module(windowed.config, remat=True)
    jaxpr = lambda module: str(jax.make_jaxpr(lambda q: module.apply({"params": q}, ids, mask))(windowed.params))  # noqa: E731
    assert "remat" in jaxpr(remat) and "remat" not in jaxpr(windowed.module)


@pytest.mark.slow
def test_remat_keeps_the_gradients(windowed):
    ids, mask = left_padded_batch(np.random.default_rng(3), (5, 4), BASE["vocab_size"])
    remat = models.build_module(windowed.config, remat=True)
    grad = lambda module: jax.jit(jax.grad(lambda q: module.apply({"params": q}, ids, mask).sum()))  # noqa: E731
    got, want = grad(remat)(windowed.params), grad(windowed.module)(windowed.params)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_bfloat16_compute_keeps_the_logits(windowed):
    m, p = windowed.module, {"params": windowed.params}
    ids, mask = left_padded_batch(np.random.default_rng(3), (5, 4), BASE["vocab_size"])
    want = np.asarray(jax.jit(m.apply)(p, ids, mask))
    bf16 = models.build_module(windowed.config, dtype=jnp.bfloat16)
    got = jax.jit(bf16.apply)(p, ids, mask)
    assert got.dtype == jnp.float32
    real = mask.astype(bool)
    assert np.abs(np.asarray(got) - want)[real].max() < 0.05 * np.abs(want).max()


def test_logical_axes_cover_every_param(windowed):
    axes = models.logical_axes(windowed)
    is_axes = lambda x: isinstance(x, tuple)  # noqa: E731
    assert jax.tree.structure(axes, is_leaf=is_axes) == jax.tree.structure(windowed.params)
    for name, leaf in zip(jax.tree.leaves(axes, is_leaf=is_axes), jax.tree.leaves(windowed.params)):
        assert len(name) == leaf.ndim
    attn = axes["layers"]["attn"]
    assert attn["q_kernel"] == ("layers", "embed", "heads", "kv")
    assert attn["k_kernel"] == ("layers", "embed", "kv_heads", "kv")
    assert axes["layers"]["mlp"]["down_kernel"] == ("layers", "mlp", "embed")
    assert axes["embed_tokens"] == ("vocab", "embed") and axes["lm_head"] == ("embed", "vocab")


@pytest.mark.parametrize("kv_heads", [1, pytest.param(2, marks=pytest.mark.slow)])
def test_sharded_forward_on_a_mesh_equals_single_device(kv_heads):
    """A (2, 2, 2) mesh: query heads split over the tensor axis, KV heads too when they divide
    it (2) and replicated when they do not (1); vocabulary 97 is not divisible either."""
    import flax.linen as nn

    config = hf_config("llama_2kv_untied", num_key_value_heads=kv_heads)
    loaded = models.from_config(config, seed=3)
    mesh = parallel.make_mesh({"data": 2, "fsdp": 2, "tensor": 2})
    shardings = parallel.param_shardings(models.logical_axes(loaded), loaded.params, mesh)
    kv_spec = P(None, "fsdp", "tensor" if kv_heads == 2 else None, None)
    assert shardings["layers"]["attn"]["k_kernel"].spec == kv_spec
    assert shardings["layers"]["attn"]["q_kernel"].spec == P(None, "fsdp", "tensor", None)
    params = jax.device_put(loaded.params, shardings)
    ids, mask = left_padded_batch(np.random.default_rng(5), (5, 4, 6, 2), BASE["vocab_size"])
    want = np.asarray(jax.jit(loaded.module.apply)({"params": loaded.params}, ids, mask))
    with jax.set_mesh(mesh), nn.logical_axis_rules(parallel.LOGICAL_RULES):
        got = jax.jit(lambda q: loaded.module.apply({"params": q}, ids, mask))(params)
    assert got.sharding.spec[0] == ("data", "fsdp")
    np.testing.assert_allclose(np.asarray(got), want, atol=1e-5)


def test_compiled_size_does_not_grow_with_depth():
    """Scanned layers: the train step's HLO is the same size at 2 and 8 layers."""

    def hlo_size(n):
        module = models.build_module(hf_config("llama_2kv_untied", num_hidden_layers=n))
        shapes = models.param_shapes(module)
        ids = jnp.zeros((2, 8), jnp.int32)
        step = jax.jit(jax.grad(lambda p: module.apply({"params": p}, ids).sum()))
        return len(step.lower(shapes).as_text())

    small, deep = hlo_size(2), hlo_size(8)
    assert abs(deep - small) < 0.02 * small


# ---------------------------------------------------------------------------- bad configs


@pytest.mark.parametrize(
    "changes,message",
    [
        (dict(rope_parameters=dict(rope_type="yarn", factor=2.0, rope_theta=1e4)), r"rope_parameters.rope_type='yarn'"),
        (dict(rope_parameters=dict(rope_type="linear", rope_theta=1e4)), r"rope_parameters.factor is missing"),
        (dict(num_key_value_heads=3), r"num_key_value_heads=3 does not divide num_attention_heads=4"),
        (dict(hidden_act="tanhshrink"), r"hidden_act='tanhshrink'"),
    ],
)
def test_unsupported_configs_are_one_user_error(changes, message):
    config = hf_config("llama_2kv_untied")
    for field, value in changes.items():
        setattr(config, field, value)
    with pytest.raises(UserError, match=message):
        models.build_module(config)
