"""Batches: loss mask, packing, reference collation, determinism, host shards, resumption."""

import collections

import numpy as np
import pytest
import torch
import transformers

from rt_jax.data.batching import BatchIterator, default_buckets
from rt_jax.data.tokenize import TokenizeStats, tokenize_pairs
from rt_jax.errors import UserError
from rt_jax.models import gpt2, t5
from rt_jax.models.byte_tokenizer import ByteTokenizer

Pair = collections.namedtuple("Pair", "sample_index prompt target")


@pytest.fixture(scope="module")
def pairs(multiarith_raw):
    """Vanilla fine-tuning pairs (the reference's ft template) over real MultiArith rows."""
    rows = multiarith_raw[:120]
    return [Pair(i, f"{r['sQuestion'].strip()} ###", f" {int(r['lSolutions'][0])}") for i, r in enumerate(rows)]


def _segments(batch, row, seg_key):
    seg = batch[seg_key][row]
    return [np.flatnonzero(seg == s) for s in range(1, seg.max() + 1)]


def _decoder_sequences(batch):
    """(input tokens, loss-masked target tokens) of every packed or padded sequence."""
    out = []
    for r in range(len(batch["input_ids"])):
        for idx in _segments(batch, r, "segment_ids"):
            assert np.array_equal(batch["positions"][r, idx], np.arange(len(idx)))  # restart per segment
            assert np.array_equal(batch["targets"][r, idx[:-1]], batch["input_ids"][r, idx[1:]])
            assert batch["loss_mask"][r, idx[-1]] == 0  # nothing to predict after the last token
            masked = batch["loss_mask"][r, idx] == 1
            out.append((batch["input_ids"][r, idx], batch["targets"][r, idx][masked]))
    return out


@pytest.mark.parametrize("packing", [False, True])
@pytest.mark.parametrize("tok_name", ["gpt2_like", "byte"])
def test_loss_mask_covers_exactly_the_target(pairs, tok_name, packing, request):
    tok = ByteTokenizer() if tok_name == "byte" else request.getfixturevalue(tok_name)
    examples = tokenize_pairs(pairs, tok, gpt2.FAMILY, max_length=512)
    it = BatchIterator(examples, batch_size=4, seed=1, packing=packing, seq_len=512)
    texts = {}
    for batch in it.epoch_batches(0):
        assert batch["loss_mask"][batch["segment_ids"] == 0].sum() == 0
        for seq, target in _decoder_sequences(batch):
            assert target[-1] == tok.eos_token_id
            whole = tok.decode(seq, skip_special_tokens=True)
            texts[whole] = tok.decode(target, skip_special_tokens=True)
    want = {p.prompt + p.target: p.target for p in pairs}
    assert texts == want  # every example exactly once, target tokens decode to the target string


def test_encoder_decoder_rows(pairs, t5_like):
    examples = tokenize_pairs(pairs, t5_like, t5.FAMILY, max_length=256)
    eos = t5_like.eos_token_id
    for packing in (False, True):
        it = BatchIterator(
            examples,
            8,
            seed=0,
            packing=packing,
            seq_len=256,
            target_seq_len=64,
            is_encoder_decoder=True,
            pad_id=t5_like.pad_token_id,
            decoder_start_token_id=7,
        )
        seen = {}
        for batch in it.epoch_batches(0):
            for r in range(len(batch["input_ids"])):
                enc = _segments(batch, r, "encoder_segment_ids")
                dec = _segments(batch, r, "decoder_segment_ids")
                assert len(enc) == len(dec)
                for e, d in zip(enc, dec):
                    target = batch["targets"][r, d]
                    assert batch["loss_mask"][r, d].all() and target[-1] == eos
                    shifted = np.concatenate([[7], target[:-1]])
                    assert np.array_equal(batch["decoder_input_ids"][r, d], shifted)
                    seen[t5_like.decode(batch["input_ids"][r, e], skip_special_tokens=True)] = t5_like.decode(
                        target, skip_special_tokens=True
                    )
            assert batch["loss_mask"][batch["decoder_segment_ids"] == 0].sum() == 0
        assert seen == {p.prompt: p.target for p in pairs}


def _reference_decoder_collate(inputs, labels, tokenizer):
    """reasoning-teacher DataModule.tokenize (model_type=decoder, append_eos=True), restated."""
    iids = tokenizer(inputs, max_length=512, truncation=True)["input_ids"]
    lids = tokenizer([x + tokenizer.eos_token for x in labels], max_length=512, truncation=True)["input_ids"]
    longest = max(len(a) + len(b) for a, b in zip(iids, lids))
    input_ids, mask, label_ids = [], [], []
    for a, b in zip(iids, lids):
        pad = longest - len(a) - len(b)
        input_ids.append([tokenizer.pad_token_id] * pad + a + b)
        mask.append([0] * pad + [1] * (len(a) + len(b)))
        label_ids.append([-100] * (pad + len(a)) + b)
    return torch.tensor(input_ids), torch.tensor(mask), torch.tensor(label_ids)


def test_padding_matches_reference_collation_and_loss(pairs, gpt2_like):
    """Same tokens, same supervised tokens, and the same GPT-2 loss as the reference's batch."""
    chosen = pairs[:8]
    examples = tokenize_pairs(chosen, gpt2_like, gpt2.FAMILY, max_length=512)
    it = BatchIterator(examples, batch_size=8, seed=0, packing=False, seq_len=512, pad_id=gpt2_like.pad_token_id)
    batch = it.batch(0, 0)
    order = [chosen[rows[0]].sample_index for rows in it.global_rows(0, 0)]
    ref_ids, ref_mask, ref_labels = _reference_decoder_collate(
        [chosen[i].prompt for i in order], [chosen[i].target for i in order], gpt2_like
    )
    for r in range(8):
        ours = batch["input_ids"][r][batch["segment_ids"][r] > 0]
        assert ours.tolist() == ref_ids[r][ref_mask[r] == 1].tolist()
        assert batch["targets"][r][batch["loss_mask"][r] == 1].tolist() == ref_labels[r][ref_labels[r] != -100].tolist()

    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=len(gpt2_like), n_positions=256, n_embd=32, n_layer=2, n_head=2)
    model = transformers.GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        # The reference's left padding with positions counted from the first real token.
        ref_pos = (ref_mask.cumsum(-1) - 1).clamp(min=0)
        ref_loss = model(ref_ids, attention_mask=ref_mask, position_ids=ref_pos, labels=ref_labels).loss
        logits = model(
            torch.tensor(batch["input_ids"], dtype=torch.long),
            attention_mask=torch.tensor(batch["segment_ids"] > 0, dtype=torch.long),
            position_ids=torch.tensor(batch["positions"], dtype=torch.long),
        ).logits
        nll = torch.nn.functional.cross_entropy(
            logits.flatten(0, 1), torch.tensor(batch["targets"], dtype=torch.long).flatten(), reduction="none"
        )
        weights = torch.tensor(batch["loss_mask"], dtype=torch.float32).flatten()
        ours = (nll * weights).sum() / weights.sum()
    torch.testing.assert_close(ours, ref_loss, rtol=1e-5, atol=1e-5)


def test_encoder_decoder_padding_matches_reference_collation_and_loss(pairs, t5_like):
    """reasoning-teacher's encoder-decoder collation (right padding to the longest input and
    label, labels -100 on padding, T5 shifting labels right) gives the same loss as our rows."""
    chosen = pairs[:8]
    examples = tokenize_pairs(chosen, t5_like, t5.FAMILY, max_length=512)
    it = BatchIterator(
        examples,
        8,
        seed=0,
        packing=False,
        seq_len=512,
        is_encoder_decoder=True,
        pad_id=t5_like.pad_token_id,
        decoder_start_token_id=t5_like.pad_token_id,
    )
    batch = {k: torch.tensor(v, dtype=torch.long) for k, v in it.batch(0, 0).items()}
    order = [chosen[rows[0]] for rows in it.global_rows(0, 0)]
    inputs = t5_like([p.prompt for p in order], padding="longest", max_length=512, truncation=True, return_tensors="pt")
    labels = t5_like([p.target for p in order], padding="longest", max_length=512, truncation=True, return_tensors="pt")
    label_ids = labels["input_ids"].masked_fill(labels["attention_mask"] == 0, -100)
    torch.manual_seed(0)
    config = transformers.T5Config(
        vocab_size=len(t5_like),
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_heads=2,
        decoder_start_token_id=t5_like.pad_token_id,
        pad_token_id=t5_like.pad_token_id,
    )
    model = transformers.T5ForConditionalGeneration(config).eval()
    shifted = model._shift_right(label_ids)
    for r in range(8):
        dec = batch["decoder_segment_ids"][r] > 0
        assert (
            batch["input_ids"][r][batch["encoder_segment_ids"][r] > 0].tolist()
            == inputs["input_ids"][r][inputs["attention_mask"][r] == 1].tolist()
        )
        assert batch["targets"][r][dec].tolist() == label_ids[r][label_ids[r] != -100].tolist()
        assert batch["decoder_input_ids"][r][dec].tolist() == shifted[r][: int(dec.sum())].tolist()
    with torch.no_grad():
        ref_loss = model(**inputs, labels=label_ids, decoder_attention_mask=labels["attention_mask"]).loss
        logits = model(
            input_ids=batch["input_ids"],
            attention_mask=batch["encoder_segment_ids"] > 0,
            decoder_input_ids=batch["decoder_input_ids"],
            decoder_attention_mask=batch["decoder_segment_ids"] > 0,
        ).logits
        nll = torch.nn.functional.cross_entropy(logits.flatten(0, 1), batch["targets"].flatten(), reduction="none")
        weights = batch["loss_mask"].flatten().float()
        ours = (nll * weights).sum() / weights.sum()
    torch.testing.assert_close(ours, ref_loss, rtol=1e-5, atol=1e-5)


def test_padded_widths_are_few_buckets(pairs, gpt2_like):
    examples = tokenize_pairs(pairs, gpt2_like, gpt2.FAMILY, max_length=512)
    it = BatchIterator(examples, batch_size=8, seed=3, packing=False, seq_len=512)
    widths = {it.batch(e, s)["input_ids"].shape for e in range(3) for s in range(it.steps_per_epoch)}
    assert {w[1] for w in widths} <= set(default_buckets(512))
    assert len(widths) <= 4
    packed = BatchIterator(examples, batch_size=2, seed=3, packing=True, seq_len=512)
    assert {packed.batch(0, s)["input_ids"].shape for s in range(packed.steps_per_epoch)} == {(2, 512)}
    assert packed.steps_per_epoch < it.steps_per_epoch


def test_order_is_a_function_of_seed_and_epoch(pairs):
    examples = tokenize_pairs(pairs, ByteTokenizer(), gpt2.FAMILY, max_length=512)

    def epoch(seed, e, packing):
        it = BatchIterator(examples, 4, seed=seed, packing=packing, seq_len=512)
        return [b["input_ids"] for b in it.epoch_batches(e)]

    for packing in (False, True):
        a, b = epoch(5, 2, packing), epoch(5, 2, packing)
        assert all(np.array_equal(x, y) for x, y in zip(a, b)) and len(a) == len(b)
        for other in (epoch(5, 3, packing), epoch(6, 2, packing)):
            assert not all(x.shape == y.shape and np.array_equal(x, y) for x, y in zip(a, other))


@pytest.mark.parametrize("packing", [False, True])
def test_host_shards_are_disjoint_and_cover_the_global_batch(pairs, packing):
    examples = tokenize_pairs(pairs, ByteTokenizer(), gpt2.FAMILY, max_length=512)
    whole = BatchIterator(examples, 8, seed=2, packing=packing, seq_len=512)
    hosts = [
        BatchIterator(examples, 8, seed=2, packing=packing, seq_len=512, process_index=p, process_count=4)
        for p in range(4)
    ]
    assert {h.steps_per_epoch for h in hosts} == {whole.steps_per_epoch}
    for step in range(whole.steps_per_epoch):
        global_batch = whole.batch(1, step)
        local = [h.batch(1, step) for h in hosts]
        for key, value in global_batch.items():
            assert np.array_equal(np.concatenate([b[key] for b in local]), value), key
        # disjoint and covering: the hosts' sequences are exactly the global batch's (as a multiset;
        # MultiArith repeats some questions)
        on_hosts = collections.Counter(tuple(s.tolist()) for b in local for s, _ in _decoder_sequences(b))
        assert on_hosts == collections.Counter(tuple(s.tolist()) for s, _ in _decoder_sequences(global_batch))
        assert sum(on_hosts.values()) == sum(len(r) for r in whole.global_rows(1, step)) > 0


def test_restore_resumes_mid_epoch(pairs):
    examples = tokenize_pairs(pairs, ByteTokenizer(), gpt2.FAMILY, max_length=512)
    uninterrupted = [b for e in (0, 1) for b in BatchIterator(examples, 8, 4, True, 512).epoch_batches(e)]

    first = BatchIterator(examples, 8, 4, True, 512)
    got = []
    for batch in first.epoch_batches(0):
        got.append(batch)
        if len(got) == 2:
            break
    state = first.state_dict()
    assert state["epoch"] == 0 and state["step"] == 2

    resumed = BatchIterator(examples, 8, 4, True, 512)
    resumed.restore(state)
    got += [b for e in (0, 1) for b in resumed.epoch_batches(e)]
    assert len(got) == len(uninterrupted)
    assert all(np.array_equal(a["input_ids"], b["input_ids"]) for a, b in zip(got, uninterrupted))

    with pytest.raises(UserError, match="does not match"):
        BatchIterator(examples[1:], 8, 4, True, 512).restore(state)
    with pytest.raises(UserError, match="does not match"):
        BatchIterator(examples, 8, 5, True, 512).restore(state)


def test_bad_input_is_a_user_error(pairs):
    examples = tokenize_pairs(pairs, ByteTokenizer(), gpt2.FAMILY, max_length=512)
    with pytest.raises(UserError, match="empty"):
        BatchIterator([], 8, 0, True, 512)
    with pytest.raises(UserError, match="batch_size=6"):
        BatchIterator(examples, 6, 0, True, 512, process_index=0, process_count=4)
    with pytest.raises(UserError, match="max_seq_len=64"):
        BatchIterator(examples, 8, 0, True, 64)


def test_truncation_policy():
    tok = ByteTokenizer()
    stats = TokenizeStats()
    long_target = tokenize_pairs([Pair(0, "abc ###", " " + "x" * 100)], tok, gpt2.FAMILY, 32, stats)[0]
    assert long_target.prompt_ids.tolist() == list(b"abc ###")
    assert long_target.target_ids.tolist() == list(b" " + b"x" * 24)  # head kept, EOS cut off
    long_prompt = tokenize_pairs([Pair(1, "p" * 40, " y")], tok, gpt2.FAMILY, 32, stats)[0]
    assert len(long_prompt.prompt_ids) == 31 and long_prompt.target_ids.tolist() == [ord(" ")]
    assert (stats.num_examples, stats.num_truncated, stats.num_prompt_truncated) == (2, 2, 1)
    ed = tokenize_pairs([Pair(2, "q" * 40, "t" * 40)], tok, t5.FAMILY, 16)[0]
    assert ed.prompt_ids.tolist() == list(b"q" * 15) + [tok.eos_token_id]
    assert ed.target_ids.tolist() == list(b"t" * 15) + [tok.eos_token_id]
