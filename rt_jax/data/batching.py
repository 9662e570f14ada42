"""Training batches: padded (one example per row) or packed (first-fit rows), host-sharded.

A batch is a dict of int32 numpy arrays [B_local, L] (see BUILD_NOTES "Training batches"):
- decoder-only: input_ids, segment_ids (1.. per sequence, 0 = padding), positions (restart at 0
  per sequence), targets (next token within the sequence), loss_mask (1 where the target is a
  target-side token: rationale/answer/EOS).
- encoder-decoder: input_ids, encoder_segment_ids, decoder_input_ids (targets shifted right with
  decoder_start_token_id per sequence), decoder_segment_ids, targets, loss_mask.

Order is a pure function of (seed, epoch, step): every host computes the same global plan from
the example lengths and builds only its own rows (rows [p*B/P, (p+1)*B/P) of each global batch).
"""

from __future__ import annotations

import hashlib
from typing import Any, Iterator, Sequence

import numpy as np

from rt_jax.data.packing import first_fit
from rt_jax.data.tokenize import TokenizedExample
from rt_jax.errors import UserError


def default_buckets(max_length: int, smallest: int = 16) -> tuple[int, ...]:
    """Four lengths per octave (16, 20, 24, 28, 32, 40, ...), up to max_length.

    Padding to the next bucket wastes at most a fifth of a row; a run compiles one shape per
    bucket its batches reach (Fine-tune-CoT lengths span about one octave: a handful).
    """
    out, b = set(), smallest
    while b < max_length:
        out.update(b + k * b // 4 for k in range(4))
        b *= 2
    return tuple(sorted({x for x in out if x < max_length} | {max_length}))


def bucket_length(n: int, buckets: Sequence[int]) -> int:
    for b in buckets:
        if b >= n:
            return b
    raise ValueError(f"length {n} exceeds the largest bucket {buckets[-1]}")


def _decoder_rows(rows, examples, width, pad_id) -> dict[str, np.ndarray]:
    shape = (len(rows), width)
    out = {k: np.zeros(shape, np.int32) for k in ("segment_ids", "positions", "targets", "loss_mask")}
    out["input_ids"] = np.full(shape, pad_id, np.int32)
    for r, members in enumerate(rows):
        offset = 0
        for seg, i in enumerate(members, start=1):
            ex = examples[i]
            seq = np.concatenate([ex.prompt_ids, ex.target_ids])
            n, p = len(seq), len(ex.prompt_ids)
            span = slice(offset, offset + n)
            out["input_ids"][r, span] = seq
            out["segment_ids"][r, span] = seg
            out["positions"][r, span] = np.arange(n)
            out["targets"][r, offset : offset + n - 1] = seq[1:]
            # position t predicts token t+1: the target tokens are predicted from p-1 .. n-2
            out["loss_mask"][r, offset + p - 1 : offset + n - 1] = 1
            offset += n
    return out


def _encoder_decoder_rows(rows, examples, width, target_width, pad_id, start_id) -> dict[str, np.ndarray]:
    enc_shape, dec_shape = (len(rows), width), (len(rows), target_width)
    out = {
        "input_ids": np.full(enc_shape, pad_id, np.int32),
        "encoder_segment_ids": np.zeros(enc_shape, np.int32),
        "decoder_input_ids": np.full(dec_shape, pad_id, np.int32),
        "decoder_segment_ids": np.zeros(dec_shape, np.int32),
        "targets": np.full(dec_shape, pad_id, np.int32),
        "loss_mask": np.zeros(dec_shape, np.int32),
    }
    for r, members in enumerate(rows):
        enc_off = dec_off = 0
        for seg, i in enumerate(members, start=1):
            ex = examples[i]
            p, t = len(ex.prompt_ids), len(ex.target_ids)
            out["input_ids"][r, enc_off : enc_off + p] = ex.prompt_ids
            out["encoder_segment_ids"][r, enc_off : enc_off + p] = seg
            dec = slice(dec_off, dec_off + t)
            out["targets"][r, dec] = ex.target_ids
            out["decoder_input_ids"][r, dec_off] = start_id
            out["decoder_input_ids"][r, dec_off + 1 : dec_off + t] = ex.target_ids[:-1]
            out["decoder_segment_ids"][r, dec] = seg
            out["loss_mask"][r, dec] = 1
            enc_off, dec_off = enc_off + p, dec_off + t
    return out


class BatchIterator:
    """Deterministic, resumable, host-sharded batches over tokenized examples.

    padding mode (packing=False): one example per row, right-padded to the bucketed length of
      the longest example in the global batch (like the reference's collation, but per batch).
    packing mode: examples are first-fit packed into rows of `seq_len` tokens (encoder-decoder:
      `seq_len` encoder and `target_seq_len` decoder tokens) once per iterator; every epoch
      shuffles the rows. Packing once keeps `steps_per_epoch` static; each row's members stay
      together for the run, which does not change any sequence's loss (attention never crosses
      segments) and only ties which examples share a batch.
    `batch_size` is the global number of rows per step. The last batch of an epoch is filled up
    with empty rows (loss_mask 0) so every step has the same shape.
    """

    def __init__(
        self,
        examples: Sequence[TokenizedExample],
        batch_size: int,
        seed: int,
        packing: bool,
        seq_len: int,
        process_index: int = 0,
        process_count: int = 1,
        *,
        is_encoder_decoder: bool = False,
        target_seq_len: int | None = None,
        pad_id: int = 0,
        decoder_start_token_id: int = 0,
        buckets: Sequence[int] | None = None,
    ):
        if not examples:
            raise UserError("no training examples to batch: the training set is empty")
        if batch_size < 1 or batch_size % process_count:
            raise UserError(
                f"--config.train.batch_size={batch_size}: expected a positive multiple of the "
                f"number of hosts ({process_count})"
            )
        if not 0 <= process_index < process_count:
            raise ValueError(f"process_index {process_index} not in [0, {process_count})")
        self.examples = list(examples)
        self.batch_size, self.seed, self.packing = batch_size, int(seed), bool(packing)
        self.seq_len = seq_len
        self.target_seq_len = target_seq_len or seq_len
        self.process_index, self.process_count = process_index, process_count
        self.is_encoder_decoder = is_encoder_decoder
        self.pad_id, self.decoder_start_token_id = pad_id, decoder_start_token_id
        self.lengths = np.array([ex.length(is_encoder_decoder) for ex in self.examples], np.int64)
        self._check_lengths()
        self.buckets = tuple(buckets) if buckets else default_buckets(seq_len)
        self.target_buckets = tuple(buckets) if buckets else default_buckets(self.target_seq_len)
        if packing:
            capacity = [seq_len, self.target_seq_len] if is_encoder_decoder else [seq_len, 1]
            self.rows = first_fit(self.lengths, capacity)
        else:
            self.rows = [[i] for i in range(len(self.examples))]
        self.steps_per_epoch = -(-len(self.rows) // batch_size)
        self._fingerprint = self._compute_fingerprint()
        self._epoch, self._step = 0, 0
        self._order: tuple[int | None, np.ndarray] = (None, np.empty(0, np.int64))

    def _check_lengths(self) -> None:
        limits = np.array([self.seq_len, self.target_seq_len if self.is_encoder_decoder else 0])
        bad = np.flatnonzero((self.lengths > limits).any(axis=1))
        if bad.size:
            ex = self.examples[int(bad[0])]
            raise UserError(
                f"example of sample_index {ex.sample_index} has {self.lengths[bad[0]].tolist()} tokens, "
                f"more than --config.train.max_seq_len={self.seq_len}: tokenize with max_length <= seq_len"
            )

    # --- the plan: pure functions of (seed, epoch, step) ---
    def epoch_order(self, epoch: int) -> np.ndarray:
        """Permutation of the rows for this epoch (same on every host)."""
        if self._order[0] != epoch:  # one epoch cached: batches are asked for in epoch order
            self._order = (epoch, np.random.default_rng([self.seed, epoch]).permutation(len(self.rows)))
        return self._order[1]

    def global_rows(self, epoch: int, step: int) -> list[list[int]]:
        """Example indices of every row of the global batch (empty lists fill the last batch)."""
        if not 0 <= step < self.steps_per_epoch:
            raise IndexError(f"step {step} not in [0, {self.steps_per_epoch})")
        order = self.epoch_order(epoch)[step * self.batch_size : (step + 1) * self.batch_size]
        rows = [self.rows[u] for u in order]
        return rows + [[]] * (self.batch_size - len(rows))

    def _widths(self, rows: list[list[int]]) -> tuple[int, int]:
        if self.packing:
            return self.seq_len, self.target_seq_len if self.is_encoder_decoder else 0
        members = [i for row in rows for i in row]
        longest = self.lengths[members].max(axis=0)
        target_width = bucket_length(int(longest[1]), self.target_buckets) if self.is_encoder_decoder else 0
        return bucket_length(int(longest[0]), self.buckets), target_width

    def batch(self, epoch: int, step: int) -> dict[str, np.ndarray]:
        """This host's rows of global batch `step` of `epoch`."""
        rows = self.global_rows(epoch, step)
        width, target_width = self._widths(rows)  # from the global batch: equal on all hosts
        local = self.batch_size // self.process_count
        rows = rows[self.process_index * local : (self.process_index + 1) * local]
        if self.is_encoder_decoder:
            return _encoder_decoder_rows(
                rows, self.examples, width, target_width, self.pad_id, self.decoder_start_token_id
            )
        return _decoder_rows(rows, self.examples, width, self.pad_id)

    # --- iteration with a checkpointable position ---
    def epoch_batches(self, epoch: int) -> Iterator[dict[str, np.ndarray]]:
        """Batches of `epoch`; after restore() into this epoch, starts at the saved step.

        The position advances when a batch is handed out, so state_dict() taken after the
        train step on a batch resumes at the next one.
        """
        start = self._step if epoch == self._epoch else 0
        for step in range(start, self.steps_per_epoch):
            self._epoch, self._step = epoch, step + 1
            yield self.batch(epoch, step)

    def _compute_fingerprint(self) -> str:
        """Identifies the data and plan settings, so a resume onto different data is refused."""
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.lengths).tobytes())
        for ex in self.examples:
            h.update(ex.prompt_ids.tobytes() + b"|" + ex.target_ids.tobytes() + b"#")
        h.update(repr((self.seed, self.batch_size, self.packing, self.seq_len, self.target_seq_len)).encode())
        return h.hexdigest()[:16]

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self._epoch, "step": self._step, "fingerprint": self._fingerprint}

    def restore(self, state: dict[str, Any]) -> None:
        if state.get("fingerprint") != self._fingerprint:
            raise UserError(
                "checkpointed data position does not match this training data (examples, seed, "
                "batch_size, packing or seq_len changed); use a fresh workdir"
            )
        self._epoch, self._step = int(state["epoch"]), int(state["step"])


def token_slots(it: BatchIterator, epoch: int = 0) -> dict[str, float]:
    """Token slots an epoch computes on (global, all hosts) and how many hold real tokens.

    Encoder-decoder slots count encoder and decoder positions together. Computed from the plan
    alone, without building batches.
    """
    slots = 0
    for step in range(it.steps_per_epoch):
        width, target_width = it._widths(it.global_rows(epoch, step))
        slots += it.batch_size * (width + target_width)
    real = int(it.lengths.sum())
    return {
        "slots": slots,
        "real_tokens": real,
        "padding_fraction": 1.0 - real / slots,
        "steps": it.steps_per_epoch,
        "examples_per_step": len(it.examples) / it.steps_per_epoch,
    }
