"""Batched decoding of any number of prompts: tokenise, bucket, run the compiled loop, detokenise."""

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from rt_jax.decoding import adapters, batching, beam_search, continuous, sampling, stopping
from rt_jax.decoding.config import DecodeConfig, validate
from rt_jax.errors import UserError
from rt_jax.parallel import BATCH_AXES

REASONS = {sampling.EOS: "eos", sampling.STOP: "stop", sampling.LENGTH: "length"}


@dataclasses.dataclass(frozen=True)
class Decoded:
    """One completion. tokens: generated ids (ending with EOS when finish_reason is "eos");
    text: their decoding without special tokens, cut right after a stop string if any;
    score: beam score (log-prob / length**length_penalty), None for greedy and sampling."""

    text: str
    tokens: tuple[int, ...]
    finish_reason: str  # "eos" | "stop" | "length"
    score: float | None = None


def context_length(model_config) -> int | None:
    """Most positions a decoder-only model can attend over; None when unbounded (T5)."""
    if getattr(model_config, "is_encoder_decoder", False):
        return None
    for name in ("n_positions", "max_position_embeddings"):
        value = getattr(model_config, name, None)
        if value:
            return int(value)
    return None


def _encode(tokenizer, text: str) -> list[int]:
    return list(tokenizer.encode(text))


class Decoder:
    """Compiled decoding of one model with one DecodeConfig. Reuse it: each (batch bucket,
    prompt bucket) pair compiles once. `mesh`: batch rows are split over its data/fsdp axes;
    `param_shardings`: a pytree of shardings for `loaded.params` (e.g. from training). A model
    without params (loaded.params None) decodes the params given with each call."""

    def __init__(self, loaded, config: DecodeConfig, mesh=None, param_shardings=None):
        self.loaded, self.config = loaded, validate(config)
        self.adapter = adapters.adapter_for(loaded, config.max_new_tokens)
        tok, mcfg = loaded.tokenizer, loaded.config
        eos = config.eos_token_id
        if eos is None:
            eos = getattr(tok, "eos_token_id", None)
        if eos is None:
            eos = getattr(mcfg, "eos_token_id", None)
        self.eos_id = -3 if eos is None else int(eos)  # -3 never matches a token
        pad = getattr(tok, "pad_token_id", None)
        self.pad_id = int(pad if pad is not None else (eos if eos is not None else 0))
        self.patterns = stopping.stop_patterns(tok, config.stop_strings)
        self.context = context_length(mcfg)
        self.mesh = mesh
        # A mesh over several processes' devices: inputs are built from the same host values in
        # every process and results are all-gathered, so every process gets every completion.
        self.multihost = mesh is not None and not all(d.process_index == jax.process_index() for d in mesh.devices.flat)
        self.params = _placed_params(loaded, mesh, param_shardings, config.layer_layout)
        if config.strategy == "beam":
            fn = functools.partial(beam_search.beam_loop, self.adapter, config)
            self._run = jax.jit(lambda p, ids, m, lim, keys: fn(p, ids, m, lim, self.eos_id, self.patterns))
        else:
            fn = functools.partial(sampling.decode_loop, self.adapter, config)
            self._run = jax.jit(
                lambda p, ids, m, lim, keys: fn(p, ids, m, lim, keys, self.eos_id, self.pad_id, self.patterns)
            )
        self.static_slot_steps = 0  # rows x decode steps of static batches (the useful fraction's denominator)
        # Continuous batching: greedy and sampling on decoder-only models, one process (the host
        # loop reads finished slots; across processes every host would have to agree on them).
        self.slot_loop = None
        if config.batching == "continuous" and config.strategy != "beam" and not self.multihost:
            if isinstance(self.adapter, adapters.DecoderOnly):
                rows = None if mesh is None else NamedSharding(mesh, self._row_spec())
                self.slot_loop = continuous.SlotLoop(
                    self.adapter, config, self.eos_id, self.pad_id, self.patterns, self._put, rows
                )

    def _shards(self) -> int:
        if self.mesh is None:
            return 1
        return int(np.prod([self.mesh.shape[a] for a in BATCH_AXES if a in self.mesh.shape]))

    def _row_spec(self) -> PartitionSpec:
        return PartitionSpec(tuple(a for a in BATCH_AXES if a in self.mesh.shape))

    def _put(self, x, spec=None):
        """x (the same host array in every process) as a global array, rows split over the
        mesh's data axes (spec=PartitionSpec() replicates)."""
        if self.mesh is None:
            return jnp.asarray(x)
        if spec is None:
            spec = self._row_spec()
        sharding = NamedSharding(self.mesh, spec)
        if self.multihost:  # device_put cannot reach other processes' devices
            x = np.asarray(x)
            return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])
        return jax.device_put(x, sharding)

    def _get(self, outputs):
        """Host copies of the loop's outputs; across processes, gathered from every shard."""
        if self.multihost:
            from jax.experimental import multihost_utils

            return multihost_utils.process_allgather(outputs, tiled=True)
        return jax.device_get(outputs)

    def check_prompts(self, prompts: list[list[int]]) -> None:
        if not prompts:
            raise UserError("decoding: expected at least one prompt, got an empty list")
        for i, p in enumerate(prompts):
            if not p:
                raise UserError(f"decoding: prompt {i} is empty after tokenisation")
            if self.context is not None and len(p) >= self.context:
                raise UserError(
                    f"decoding: prompt {i} has {len(p)} tokens; expected fewer than the model's "
                    f"context of {self.context}"
                )

    def decode_ids(self, prompts: list[list[int]], key=None, progress=None) -> list[list[tuple]]:
        """Per prompt, config.num_return_sequences tuples (tokens, finish_reason, score), in
        input order. key: PRNG key for sampling (default PRNGKey(config.seed))."""
        self.check_prompts(prompts)
        c = self.config
        per_row = c.rows_per_prompt
        base_key = jax.random.PRNGKey(c.seed) if key is None else key
        if self.slot_loop is not None:
            return self._decode_continuous(prompts, base_key, progress)
        results: list = [None] * len(prompts)
        groups = batching.batches_by_length([len(p) for p in prompts], c.batch_size)
        for group in groups:
            batch = [prompts[i] for i in group]
            length = batching.bucket(max(map(len, batch)), c.min_prompt_bucket)
            # Rows (prompts x samples) must split evenly over the data shards; beam rows are
            # padded below instead.
            multiple = 1 if c.strategy == "beam" else self._shards() // math.gcd(self._shards(), per_row)
            item_rows = batching.bucket(len(batch), 1, multiple)
            ids, mask = batching.pad_prompts(batch, length, item_rows, self.pad_id, self.adapter.pad_side)
            limits = np.full((item_rows,), c.max_new_tokens, np.int32)
            for j, p in enumerate(batch):
                if self.context is not None:
                    limits[j] = min(c.max_new_tokens, self.context - len(p))
            limits[len(batch) :] = 1  # filler rows stop at once
            indices = list(group) + [0] * (item_rows - len(batch))
            keys = _row_keys(base_key, indices, per_row if c.strategy == "sample" else 1)
            if self.multihost:
                keys = self._put(jax.device_get(keys), PartitionSpec())
            prompt_spec = None
            if c.strategy == "sample":  # one prefill per prompt, shared by its samples
                limits = np.repeat(limits, per_row, axis=0)
                if item_rows % self._shards():
                    prompt_spec = PartitionSpec()
            if c.strategy == "beam":
                ids, mask, limits = self._pad_to_shards(ids, mask, limits)
            tokens, lengths, scores_or_reasons = self._get(
                self._run(
                    self.params, self._put(ids, prompt_spec), self._put(mask, prompt_spec), self._put(limits), keys
                )
            )
            self._collect(results, group, tokens, lengths, scores_or_reasons, per_row)
            if c.strategy != "beam":  # the batch ran until its longest row ended
                self.static_slot_steps += int(tokens.shape[0]) * int(np.max(lengths))
            if progress is not None:
                progress.update(len(group))
        return results

    def _decode_continuous(self, prompts, base_key, progress):
        """decode_ids through continuous batching (rows of all prompts share the slots)."""
        c = self.config
        samples = c.rows_per_prompt
        rows = [(i, s) for i in range(len(prompts)) for s in range(samples)]
        limits = [
            c.max_new_tokens if self.context is None else min(c.max_new_tokens, self.context - len(p)) for p in prompts
        ]
        keys = np.asarray(jax.device_get(_row_keys(base_key, list(range(len(prompts))), samples)))
        slots = min(c.num_slots, batching.bucket(len(rows)))
        slots = -(-slots // self._shards()) * self._shards()
        left = [samples] * len(prompts)

        def on_row(row):
            prompt = rows[row][0]
            left[prompt] -= 1
            if progress is not None and not left[prompt]:
                progress.update(1)

        outs = self.slot_loop.decode(self.params, prompts, rows, [limits[i] for i, _ in rows], keys, slots, on_row)
        return [
            [(outs[i * samples + s][0], REASONS[outs[i * samples + s][1]], None) for s in range(samples)]
            for i in range(len(prompts))
        ]

    def _pad_to_shards(self, ids, mask, limits):
        rows = batching.bucket(ids.shape[0], 1, self._shards())
        extra = rows - ids.shape[0]
        if extra:
            ids = np.concatenate([ids, np.repeat(ids[-1:], extra, 0)])
            mask = np.concatenate([mask, np.repeat(mask[-1:], extra, 0)])
            limits = np.concatenate([limits, np.ones(extra, np.int32)])
        return ids, mask, limits

    def _collect(self, results, group, tokens, lengths, scores_or_reasons, per_row):
        """Per prompt of `group`, its (tokens, finish_reason, score). The loop's third output is
        the beam scores for beam search and the finish-reason codes (REASONS) otherwise."""
        beam = self.config.strategy == "beam"
        for j, index in enumerate(group):
            outs = []
            for r in range(self.config.num_return_sequences):
                if beam:
                    seq, n, score = tokens[j, r], int(lengths[j, r]), float(scores_or_reasons[j, r])
                    reason = self._beam_reason(seq[:n])
                else:
                    row = j * per_row + r
                    seq, n, score = tokens[row], int(lengths[row]), None
                    reason = REASONS[int(scores_or_reasons[row])]
                outs.append((tuple(int(x) for x in seq[:n]), reason, score))
            results[index] = outs

    def _beam_reason(self, seq) -> str:
        if len(seq) and seq[-1] == self.eos_id:
            return "eos"
        if self.patterns.shape[0] and len(seq):
            window = np.full((self.patterns.shape[1],), -1, np.int64)
            tail = seq[-self.patterns.shape[1] :]
            window[len(window) - len(tail) :] = tail
            if bool(stopping.matches_stop(jnp.asarray(window), self.patterns)):
                return "stop"
        return "length"

    def decode_texts(self, prompts: list[str], key=None, params=None) -> list[Decoded]:
        """Decoded completions, prompt-major: prompt i's num_return_sequences completions are
        at [i * n, (i + 1) * n). `params`: decode with these instead of the decoder's own (a
        training run's, sharded as they are); the decoder keeps no reference to them."""
        if not prompts:
            raise UserError("decoding: expected at least one prompt, got an empty list")
        tok = self.loaded.tokenizer
        ids = [_encode(tok, p) for p in prompts]
        progress = None
        if self.config.show_progress:
            from tqdm import tqdm

            progress = tqdm(total=len(prompts), desc="decoding", unit="prompt")
        own = self.params
        if params is not None:
            self.params = adapters.decoding_params(self.adapter.module, params, self.config.layer_layout)
        try:
            per_prompt = self.decode_ids(ids, key=key, progress=progress)
        finally:
            self.params = own
            if progress is not None:
                progress.close()
        return [self._to_text(*out) for outs in per_prompt for out in outs]

    def _to_text(self, tokens, reason, score) -> Decoded:
        text = self.loaded.tokenizer.decode(list(tokens), skip_special_tokens=True)
        if self.config.stop_strings:
            text, found = stopping.cut_at_stop(text, self.config.stop_strings)
            if found:
                reason = "stop"
        return Decoded(text, tokens, reason, score)


def _training_shardings(loaded, mesh):
    """Parameters sharded as in training: logical axes mapped by rt_jax.parallel's rules."""
    from rt_jax import models, parallel

    return parallel.param_shardings(models.logical_axes(loaded), loaded.params, mesh)


def _row_keys(base_key, indices, samples):
    """Key of sample s of prompt i: fold_in(fold_in(base, i), s), independent of batching."""
    idx = jnp.asarray(np.repeat(np.asarray(indices, np.int32), samples))
    sub = jnp.asarray(np.tile(np.arange(samples, dtype=np.int32), len(indices)))
    return jax.vmap(lambda i, s: jax.random.fold_in(jax.random.fold_in(base_key, i), s))(idx, sub)


_PLACED: dict = {}


def _placed_params(loaded, mesh, param_shardings, layer_layout: str):
    """loaded.params on the mesh (param_shardings, default: training's) in the decoding layout,
    None for a model without params (they come with each call, e.g. a train state's, sharded as
    they are). Cached: the decoders of one model (e.g. the teacher's sampling and greedy steps)
    share one copy instead of one each."""
    if loaded.params is None:
        return None
    key = (id(loaded), id(loaded.params), id(mesh), id(param_shardings), layer_layout)
    entry = _PLACED.get(key)
    if entry is None or entry[0] is not loaded.params:
        params = loaded.params
        if mesh is not None:
            params = jax.device_put(params, param_shardings or _training_shardings(loaded, mesh))
        elif param_shardings is not None:
            params = jax.device_put(params, param_shardings)
        entry = (loaded.params, adapters.decoding_params(loaded.module, params, layer_layout))
        _PLACED[key] = entry
    return entry[1]


_DECODERS: dict = {}


def get_decoder(loaded, config: DecodeConfig, mesh=None, param_shardings=None) -> Decoder:
    """A cached Decoder per (model, config, mesh), so repeated calls reuse compilations."""
    key = (id(loaded), config, id(mesh), id(param_shardings))
    entry = _DECODERS.get(key)
    if entry is None or entry[0] is not loaded:
        entry = (loaded, Decoder(loaded, config, mesh, param_shardings))
        _DECODERS[key] = entry
    return entry[1]


def decode_texts(
    loaded, prompts: list[str], config: DecodeConfig = DecodeConfig(), key=None, mesh=None, param_shardings=None
) -> list[Decoded]:
    """Decode every prompt (any number) with `config`; input order kept, prompt-major when
    config.num_return_sequences > 1. Bad settings or prompts raise UserError before compiling."""
    validate(config)
    return get_decoder(loaded, config, mesh, param_shardings).decode_texts(prompts, key=key)
