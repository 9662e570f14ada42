"""Packed rows under the real rt_jax models: every sequence's logits equal those it gets alone."""

import collections

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import transformers

from rt_jax.data.batching import BatchIterator
from rt_jax.data.tokenize import tokenize_pairs
from rt_jax.models import ByteTokenizer, from_config, gpt2, t5

Pair = collections.namedtuple("Pair", "sample_index prompt target")


@pytest.fixture(scope="module")
def pairs(multiarith_raw):
    rows = multiarith_raw[:10]
    return [Pair(i, f"{r['sQuestion'].strip()[:60]} ###", f" so {int(r['lSolutions'][0])}") for i, r in enumerate(rows)]


def _segment_spans(seg_row):
    return [np.flatnonzero(seg_row == s) for s in range(1, seg_row.max() + 1)]


def _alone_rows(ids_per_sequence, width, pad_id):
    """Each sequence at the start of its own row; the rest is padding."""
    rows = np.full((len(ids_per_sequence), width), pad_id, np.int32)
    for i, ids in enumerate(ids_per_sequence):
        rows[i, : len(ids)] = ids
    return jnp.asarray(rows)


def test_gpt2_packed_logits_equal_each_sequence_alone(pairs):
    tok = ByteTokenizer()
    examples = tokenize_pairs(pairs, tok, gpt2.FAMILY, max_length=256)
    it = BatchIterator(examples, batch_size=4, seed=0, packing=True, seq_len=256)
    batch = it.batch(0, 0)
    assert it.steps_per_epoch == 1 and batch["segment_ids"].max() >= 3  # 10 sequences, ~70 tokens each
    hf = transformers.GPT2Config(vocab_size=258, n_positions=256, n_embd=32, n_layer=2, n_head=2)
    model = from_config(hf, seed=0)
    apply = jax.jit(lambda p, ids, pos, seg: model.module.apply({"params": p}, ids, position_ids=pos, segment_ids=seg))
    packed = apply(model.params, *(jnp.asarray(batch[k]) for k in ("input_ids", "positions", "segment_ids")))
    spans = [(r, span) for r in range(4) for span in _segment_spans(batch["segment_ids"][r])]
    assert len(spans) == len(pairs)
    # Alone: one sequence per row, default positions, no mask; causal attention never sees the
    # padding after it, so its logits are those of the unpadded sequence.
    rows = _alone_rows([batch["input_ids"][r, span] for r, span in spans], 256, tok.pad_token_id)
    alone = jax.jit(lambda p, ids: model.module.apply({"params": p}, ids))(model.params, rows)
    for i, (r, span) in enumerate(spans):
        np.testing.assert_allclose(packed[r, span], alone[i, : len(span)], atol=2e-5, rtol=2e-5)


@pytest.mark.slow  # about 40 s on the shared 2-core machine
def test_t5_packed_logits_equal_each_sequence_alone(pairs):
    tok = ByteTokenizer(add_eos=True)
    examples = tokenize_pairs(pairs, tok, t5.FAMILY, max_length=128)
    it = BatchIterator(
        examples,
        batch_size=4,
        seed=0,
        packing=True,
        seq_len=256,
        target_seq_len=32,
        is_encoder_decoder=True,
        pad_id=tok.pad_token_id,
        decoder_start_token_id=tok.pad_token_id,
    )
    hf = transformers.T5Config(
        vocab_size=258,
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_heads=2,
        relative_attention_num_buckets=8,
        dropout_rate=0.0,
        decoder_start_token_id=tok.pad_token_id,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
    )
    model = from_config(hf, seed=0)
    apply = jax.jit(lambda p, *a, **kw: model.module.apply({"params": p}, *a, **kw))
    batch = it.batch(0, 0)
    assert it.steps_per_epoch == 1
    b = {k: jnp.asarray(v) for k, v in batch.items()}
    packed = apply(
        model.params,
        b["input_ids"],
        b["encoder_segment_ids"] > 0,
        b["decoder_input_ids"],
        decoder_attention_mask=b["decoder_segment_ids"] > 0,
        encoder_segment_ids=b["encoder_segment_ids"],
        decoder_segment_ids=b["decoder_segment_ids"],
    )
    spans = [
        (r, e, d)
        for r in range(4)
        for e, d in zip(
            _segment_spans(batch["encoder_segment_ids"][r]), _segment_spans(batch["decoder_segment_ids"][r])
        )
    ]
    assert len(spans) == len(pairs)
    # Alone: one example per row with the usual padding mask on the (bidirectional) encoder.
    enc = _alone_rows([batch["input_ids"][r, e] for r, e, _ in spans], 128, tok.pad_token_id)
    dec = _alone_rows([batch["decoder_input_ids"][r, d] for r, _, d in spans], 32, tok.pad_token_id)
    enc_mask = jnp.asarray(np.arange(128)[None] < np.array([len(e) for _, e, _ in spans])[:, None])
    alone = apply(model.params, enc, enc_mask, dec)
    for i, (r, _, d) in enumerate(spans):
        np.testing.assert_allclose(packed[r, d], alone[i, : len(d)], atol=2e-5, rtol=2e-5)
