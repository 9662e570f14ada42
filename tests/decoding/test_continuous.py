"""Continuous batching equals decoding each prompt alone; last-position prefill; shared prefill."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from rt_jax.decoding import DecodeConfig, Decoder, adapters, sampling
from rt_jax.decoding.batching import pad_prompts

# Context 64 (both tiny models): the longer prompts get 2-7 new tokens, the others 12, so rows end
# at different steps (sampling also hits EOS) and the 3 slots are refilled many times.
LENGTHS = [40, 60, 35, 57, 5, 62, 52, 11]


def _prompts():
    rng = np.random.default_rng(0)
    return [rng.integers(3, 96, size=n).tolist() for n in LENGTHS]


# one prompt bucket (64) keeps the compilations few: the test runs in seconds
CONFIGS = {
    "greedy": dict(strategy="greedy", max_new_tokens=12, min_prompt_bucket=64),
    "sample": dict(strategy="sample", max_new_tokens=12, num_return_sequences=2, temperature=1.3, min_prompt_bucket=64),
}


@pytest.mark.parametrize(
    "model,strategy",
    [
        ("gpt2", "greedy"),
        ("llama", "sample"),
        pytest.param("gpt2", "sample", marks=pytest.mark.slow),
        pytest.param("llama", "greedy", marks=pytest.mark.slow),
    ],
)
def test_continuous_batching_equals_each_prompt_alone(request, model, strategy):
    _, loaded = request.getfixturevalue(f"{model}_pair")
    prompts = _prompts()
    settings = CONFIGS[strategy]
    decoder = Decoder(loaded, DecodeConfig(**settings, slots=3))
    assert decoder.slot_loop is not None
    outs = decoder.decode_ids(prompts)
    # each prompt alone in its batch, with the same per-row keys (fold_in(fold_in(key, i), s))
    alone = Decoder(loaded, DecodeConfig(**settings, batching="static", batch_size=1)).decode_ids(prompts)
    assert outs == alone
    lengths = [len(tokens) for per_prompt in outs for tokens, _, _ in per_prompt]
    assert len(set(lengths)) > 2  # rows really ended at different steps
    assert [len(o[0][0]) for o in outs][5] == 2  # 62 + 2 = the context
    rows = len(prompts) * decoder.config.rows_per_prompt
    assert rows > 3 and decoder.slot_loop.slot_steps >= sum(lengths)
    # one prefill (one prompt bucket), one insert, one state and one step loop
    assert decoder.slot_loop.compiled_shapes() == 4


@pytest.mark.parametrize("model", ["gpt2", "llama"])
def test_last_only_prefill_logits_equal_the_full_last_column(request, model):
    _, loaded = request.getfixturevalue(f"{model}_pair")
    ids, mask = pad_prompts([[5, 6, 7, 8, 9], [10, 11]], 8, 2, 0, "left")
    variables = {"params": loaded.params}
    kv_mask = jnp.zeros((2, 12), bool).at[:, :8].set(mask.astype(bool))
    positions = jnp.maximum(jnp.cumsum(mask, -1) - 1, 0)

    def extend(last_only):
        cache = loaded.module.apply(variables, 2, 12, method="init_cache")
        return loaded.module.apply(variables, ids, positions, cache, 0, kv_mask, last_only=last_only, method="extend")

    (full, full_cache), (last, last_cache) = extend(False), extend(True)
    assert full.shape[1] == 8 and last.shape[1] == 1
    np.testing.assert_allclose(last[:, 0], full[:, -1], rtol=1e-5, atol=1e-5)
    jax.tree.map(lambda a, b: np.testing.assert_array_equal(a, b), full_cache, last_cache)


def test_shared_prefill_sampling_equals_the_repeated_prompt(gpt2_pair):
    _, loaded = gpt2_pair
    config = DecodeConfig(strategy="sample", max_new_tokens=8, num_return_sequences=4, temperature=1.5)
    adapter = adapters.adapter_for(loaded, config.max_new_tokens)
    ids, mask = pad_prompts([[5, 6, 7], [8, 9, 10, 11, 12]], 16, 2, 0, "left")
    keys = jax.random.split(jax.random.PRNGKey(3), 8)
    limits = jnp.full((8,), 8, jnp.int32)
    patterns = np.zeros((0, 1), np.int32)
    run = jax.jit(functools.partial(sampling.decode_loop, adapter, config, eos_id=2, pad_id=0, patterns=patterns))
    shared = run(loaded.params, ids, mask, limits, keys)  # 2 prompts, each prefilled once for its 4 rows
    repeated = run(loaded.params, np.repeat(ids, 4, 0), np.repeat(mask, 4, 0), limits, keys)
    for a, b in zip(shared, repeated):
        np.testing.assert_array_equal(a, b)
    assert len({tuple(row) for row in np.asarray(shared[0])}) > 2  # the samples differ


def test_llama_decoding_layouts_give_the_same_tokens(llama_pair):
    """layer_layout="auto" reads the Llama decoding layout (per-layer arrays) on XLA:CPU only;
    per_layer gives the same tokens as stacked (test_parity checks them against transformers); the
    loaded model keeps its stacked params, and decoders of one model and layout share one copy."""
    _, loaded = llama_pair
    settings = dict(strategy="greedy", max_new_tokens=4, min_prompt_bucket=64)
    auto, per_layer, stacked = (
        Decoder(loaded, DecodeConfig(**settings, layer_layout=x)) for x in ("auto", "per_layer", "stacked")
    )
    assert isinstance(auto.params["layers"], tuple) == (jax.default_backend() == "cpu")
    assert isinstance(per_layer.params["layers"], tuple) and not isinstance(stacked.params["layers"], tuple)
    assert not isinstance(loaded.params["layers"], tuple)
    assert per_layer.decode_ids(_prompts()[:3]) == stacked.decode_ids(_prompts()[:3])
    sampling = Decoder(loaded, DecodeConfig(strategy="sample", max_new_tokens=4, layer_layout="per_layer"))
    assert sampling.params is per_layer.params
