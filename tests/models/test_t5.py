"""T5 v1.0 and v1.1 / Flan-T5 against transformers' T5ForConditionalGeneration; cache and packing paths."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from model_refs import right_padded_batch, save_state_dict, torch_logits
from transformers import T5Config, T5ForConditionalGeneration

from rt_jax import models

VARIANTS = {
    "v1.0": dict(feed_forward_proj="relu", tie_word_embeddings=True),
    "v1.1": dict(feed_forward_proj="gated-gelu", tie_word_embeddings=False),
}
SHAPES = [  # sizes, encoder lengths, decoder lengths (right padding on both sides)
    dict(
        d_model=32,
        d_kv=8,
        d_ff=40,
        num_layers=2,
        num_decoder_layers=3,
        num_heads=4,
        vocab_size=71,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=20,
        enc=(13, 5, 9),
        dec=(6, 2, 4),
    ),
    dict(
        d_model=24,
        d_kv=6,
        d_ff=16,
        num_layers=1,
        num_decoder_layers=1,
        num_heads=2,
        vocab_size=50,
        relative_attention_num_buckets=32,
        relative_attention_max_distance=128,
        enc=(3, 7),
        dec=(5, 5),
    ),
]


def make_reference(directory, variant, seed=0, **sizes):
    torch.manual_seed(seed)
    config = T5Config(dropout_rate=0.0, decoder_start_token_id=0, **VARIANTS[variant], **sizes)
    ref = T5ForConditionalGeneration(config).eval()
    if variant == "v1.1":  # transformers 5 ties lm_head at init; a real Flan-T5 head is separate.
        ref.lm_head.weight = torch.nn.Parameter(torch.randn_like(ref.lm_head.weight))
    save_state_dict(ref, config, directory)
    return ref


def batch(shape, seed=0):
    rng = np.random.default_rng(seed)
    ids, mask = right_padded_batch(rng, shape["enc"], shape["vocab_size"])
    dec, dec_mask = right_padded_batch(rng, shape["dec"], shape["vocab_size"])
    return ids, mask, dec, dec_mask


# Both variants at the first shape and v1.1 at the second by default; v1.0 x second shape is slow.
@pytest.mark.parametrize(
    "variant, shape",
    [
        ("v1.0", SHAPES[0]),
        ("v1.1", SHAPES[0]),
        ("v1.1", SHAPES[1]),
        pytest.param("v1.0", SHAPES[1], marks=pytest.mark.slow),
    ],
    ids=["v1.0-d32", "v1.1-d32", "v1.1-d24", "v1.0-d24"],
)
def test_logits_match_transformers_with_padding(tmp_path, variant, shape):
    sizes = {k: v for k, v in shape.items() if k not in ("enc", "dec")}
    ref = make_reference(tmp_path, variant, **sizes)
    loaded = models.from_pretrained(tmp_path)
    assert loaded.is_encoder_decoder
    assert loaded.module.s.tied_head == (variant == "v1.0")
    ids, mask, dec, dec_mask = batch(shape)
    want = torch_logits(
        ref,
        input_ids=ids.astype(np.int64),
        attention_mask=mask,
        decoder_input_ids=dec.astype(np.int64),
        decoder_attention_mask=dec_mask,
    )
    got = np.asarray(jax.jit(loaded.module.apply)({"params": loaded.params}, ids, mask, dec, dec_mask))
    assert got.shape == want.shape
    assert np.abs(got - want)[dec_mask.astype(bool)].max() <= 1e-4


@pytest.fixture(scope="module", params=list(VARIANTS))
def small(request, tmp_path_factory):
    # Built by torch and loaded: much cheaper than compiling a random init.
    directory = tmp_path_factory.mktemp("t5")
    make_reference(
        directory,
        request.param,
        seed=3,
        vocab_size=53,
        d_model=16,
        d_kv=4,
        d_ff=24,
        num_layers=2,
        num_heads=4,
        relative_attention_num_buckets=8,
        relative_attention_max_distance=16,
    )
    return models.from_pretrained(directory)


# The cache and packing code is the same for both variants: each runs one by default.
@pytest.mark.parametrize("small", ["v1.0", pytest.param("v1.1", marks=pytest.mark.slow)], indirect=True)
def test_cache_path_equals_full_forward(small):
    m, v = small.module, {"params": small.params}
    shape = dict(enc=(9, 4), dec=(7, 7), vocab_size=53)
    ids, mask, dec, _ = batch(shape, seed=1)
    full = np.asarray(jax.jit(m.apply)(v, ids, mask, dec))
    start = jax.jit(lambda i, msk: m.apply(v, m.apply(v, i, msk, method="encode"), msk, 8, method="init_cache"))
    cache = start(ids, mask)
    extend = jax.jit(lambda c, d, i: m.apply(v, d, c, i, mask, method="extend"))
    logits, cache = extend(cache, dec[:, :3], jnp.int32(0))  # prefill of 3 tokens, then single steps
    steps = [logits]
    for t in range(3, dec.shape[1]):
        logits, cache = extend(cache, dec[:, t : t + 1], jnp.int32(t))
        steps.append(logits)
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, atol=1e-5)


@pytest.mark.parametrize("small", [pytest.param("v1.0", marks=pytest.mark.slow), "v1.1"], indirect=True)
def test_packed_equals_one_by_one(small):
    m, v = small.module, {"params": small.params}
    rng = np.random.default_rng(4)
    pairs = [(rng.integers(1, 53, n), rng.integers(1, 53, k)) for n, k in ((5, 3), (2, 4), (6, 1))]

    def pack(parts, length):
        ids = np.concatenate(parts + [np.zeros(length - sum(map(len, parts)), int)])
        seg = np.concatenate(
            [np.full(len(p), i + 1) for i, p in enumerate(parts)] + [np.zeros(length - sum(map(len, parts)), int)]
        )
        return ids[None], seg[None]

    enc_ids, enc_seg = pack([p[0] for p in pairs], 16)
    dec_ids, dec_seg = pack([p[1] for p in pairs], 10)
    got = np.asarray(
        jax.jit(m.apply)(v, enc_ids, None, dec_ids, encoder_segment_ids=enc_seg, decoder_segment_ids=dec_seg)
    )[0]
    enc_alone, enc_mask = np.zeros((3, 6), np.int32), np.zeros((3, 6), np.int32)
    dec_alone = np.zeros((3, 4), np.int32)
    for b, (e, d) in enumerate(pairs):
        enc_alone[b, : len(e)], enc_mask[b, : len(e)], dec_alone[b, : len(d)] = e, 1, d
    want = np.asarray(jax.jit(m.apply)(v, enc_alone, enc_mask, dec_alone))
    start = 0
    for b, (_, d) in enumerate(pairs):
        np.testing.assert_allclose(got[start : start + len(d)], want[b, : len(d)], atol=1e-5)
        start += len(d)


def test_logical_axes_name_every_param(small):
    axes = models.logical_axes(small)
    is_axes = lambda x: isinstance(x, tuple)
    assert jax.tree.structure(axes, is_leaf=is_axes) == jax.tree.structure(small.params)
    for name, leaf in zip(jax.tree.leaves(axes, is_leaf=is_axes), jax.tree.leaves(small.params)):
        assert len(name) == leaf.ndim
    assert axes["encoder"]["relpos_bias"]["embedding"] == ("relpos_buckets", "heads")
    assert axes["decoder"]["block_0"]["cross_attn"]["kv_kernel"] == ("embed", None, "heads", "kv")
