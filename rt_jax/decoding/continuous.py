"""Continuous batching: greedy and sampled decoding of decoder-only models in a fixed number of slots.

Every row (one sample of one prompt) runs in a slot of one KV cache [slots, C], C = the longest
prompt's bucket + max_new_tokens. A row's prompt fills cache slots [0, P) of its slot (P: its own
prompt bucket, left-padded) and its token t goes to slot P + t, so each slot has its own cache
index, position and step count. The host loop:
  1. prefill a waiting prompt once (batch 1, logits of its last position only) and copy its cache
     into each free slot that takes one of its rows (the D samples share the prefill);
  2. run decode steps on all slots together, on device, until a slot finishes while rows are
     waiting (or every slot is done);
  3. read the finished slots' tokens and go back to 1.
Compiled shapes are static: one prefill per prompt bucket, one insert per (prompt bucket, slots,
C) and one step loop per (slots, C). A row's tokens are those of decoding its prompt alone: its
slot attends only to its own cache, and step t of a row draws with fold_in(row key, t).
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec

from rt_jax.decoding import batching, sampling


class SlotLoop:
    """Compiled pieces of continuous batching for one adapter and DecodeConfig. `put(x, spec)`
    places a host array (the driver's: on the mesh when there is one); `row_sharding` is the
    sharding of batch-first state leaves (None without a mesh)."""

    def __init__(self, adapter, config, eos_id: int, pad_id: int, patterns, put, row_sharding=None):
        self.adapter, self.config, self.put = adapter, config, put
        self.eos_id, self.pad_id, self.patterns = eos_id, pad_id, patterns
        self.prefill = jax.jit(lambda p, ids, mask: adapter.prefill(p, ids, mask, cache_length=ids.shape[1]))
        self.init = jax.jit(self._init, static_argnums=(1, 2, 3, 4), out_shardings=row_sharding)
        self.insert = jax.jit(self._insert, donate_argnums=(0,))
        self.steps = jax.jit(self._steps, donate_argnums=(1,))
        self.slot_steps = 0  # slots x decode steps run so far (the useful fraction's denominator)

    def compiled_shapes(self) -> int:
        """Distinct compiled functions so far (prefill buckets, inserts, step loops, state inits)."""
        return sum(f._cache_size() for f in (self.prefill, self.init, self.insert, self.steps))

    # ------------------------------------------------------------------ compiled pieces

    def _init(self, params, slots: int, length: int, vocab: int, key_shape: tuple):
        width = self.patterns.shape[1]
        return dict(
            model=self.adapter.empty_state(params, slots, length),
            logits=jnp.zeros((slots, vocab), jnp.float32),
            key=jnp.zeros((slots,) + key_shape, jnp.uint32),
            limit=jnp.zeros((slots,), jnp.int32),
            t=jnp.zeros((slots,), jnp.int32),
            buffer=jnp.full((slots, width + self.config.max_new_tokens), -1, jnp.int32),
            done=jnp.ones((slots,), bool),  # a done slot is free
            reason=jnp.full((slots,), sampling.LENGTH, jnp.int32),
        )

    def _insert(self, state, slot, logits, prefilled, key, limit):
        """Row `slot` of every state leaf replaced by a fresh row: the prompt's prefilled cache in
        cache slots [0, P), its last-position logits, its key and token limit."""

        def put(x, row):
            return jax.lax.dynamic_update_slice(x, row.astype(x.dtype), (slot,) + (0,) * (x.ndim - 1))

        model = state["model"]
        prompt_len = prefilled["kv_mask"].shape[1]
        kv_row = jnp.zeros((1, model["kv_mask"].shape[1]), bool).at[:, :prompt_len].set(prefilled["kv_mask"])
        fresh = dict(
            model=dict(
                cache=jax.tree.map(put, model["cache"], prefilled["cache"]),
                kv_mask=put(model["kv_mask"], kv_row),
                position=put(model["position"], prefilled["position"]),
                index=put(model["index"], jnp.full((1,), prompt_len, jnp.int32)),
            ),
            logits=put(state["logits"], logits),
            key=put(state["key"], key[None]),
            limit=put(state["limit"], limit[None]),
            t=put(state["t"], jnp.zeros((1,), jnp.int32)),
            buffer=put(state["buffer"], jnp.full((1, state["buffer"].shape[1]), -1, jnp.int32)),
            done=put(state["done"], (limit <= 0)[None]),
            reason=put(state["reason"], jnp.full((1,), sampling.RUNNING, jnp.int32)),
        )
        return fresh

    def _steps(self, params, state, waiting):
        """Decode steps of every slot until all are done, or (waiting: rows wait for a slot) one is."""
        width = self.patterns.shape[1]
        columns = jnp.arange(state["buffer"].shape[1])

        def cond(c):
            done = c[0]["done"]
            return ~jnp.all(done) & ~(waiting & jnp.any(done))

        def body(c):
            s, n = c
            t, done = s["t"], s["done"]
            token = jnp.where(done, self.pad_id, sampling.choose_tokens(s["logits"], s["key"], t, self.config))
            written = (columns == (width + t)[:, None]) & ~done[:, None]
            buffer = jnp.where(written, token[:, None], s["buffer"])
            window = jax.vmap(lambda b, i: jax.lax.dynamic_slice_in_dim(b, i, width))(buffer, t + 1)
            reason = sampling.finish_reason(token, window, t, s["limit"], self.eos_id, self.patterns)
            logits, model = self.adapter.step_rows(params, token, s["model"])
            # a finished row stays where it is (its position never runs past the context)
            keep = lambda new, old: jnp.where(done, old, new)
            model = dict(model, index=keep(model["index"], s["model"]["index"]))
            model["position"] = keep(model["position"], s["model"]["position"])
            s = dict(
                s,
                model=model,
                logits=logits,
                buffer=buffer,
                t=keep(t + 1, t),
                done=done | (reason != sampling.RUNNING),
                reason=keep(reason, s["reason"]),
            )
            return s, n + 1

        return jax.lax.while_loop(cond, body, (state, jnp.int32(0)))

    # ------------------------------------------------------------------ the host loop

    def decode(self, params, prompts, rows, limits, keys, slots: int, on_row=None):
        """prompts: token ids per prompt; rows: (prompt index, sample index) in order; limits
        [len(rows)] most new tokens; keys [len(rows), ...] host PRNG keys. Returns per row
        (tokens, reason code). on_row(i) is called as row i finishes."""
        c = self.config
        buckets = [batching.bucket(len(p), c.min_prompt_bucket) for p in prompts]
        length = max(buckets) + c.max_new_tokens
        remaining = {}  # prompt -> rows of it not yet in a slot
        for prompt, _ in rows:
            remaining[prompt] = remaining.get(prompt, 0) + 1
        prefilled = {}
        state, occupant, results = None, [None] * slots, [None] * len(rows)
        waiting = list(range(len(rows)))[::-1]  # a stack: next row last
        while True:
            if state is not None:
                done, t, reason = jax.device_get((state["done"], state["t"], state["reason"]))
                finished = [s for s in range(slots) if occupant[s] is not None and done[s]]
                if finished:
                    buffer = jax.device_get(state["buffer"])
                    width = self.patterns.shape[1]
                    for s in finished:
                        results[occupant[s]] = (tuple(int(x) for x in buffer[s, width : width + t[s]]), int(reason[s]))
                        if on_row is not None:
                            on_row(occupant[s])
                        occupant[s] = None
            for s in range(slots):
                if occupant[s] is not None or not waiting:
                    continue
                row = waiting.pop()
                prompt = rows[row][0]
                if prompt not in prefilled:
                    ids, mask = batching.pad_prompts([prompts[prompt]], buckets[prompt], 1, self.pad_id, "left")
                    spec = PartitionSpec()
                    prefilled[prompt] = self.prefill(params, self.put(ids, spec), self.put(mask, spec))
                logits, pre = prefilled[prompt]
                if state is None:
                    state = self.init(params, slots, length, logits.shape[-1], tuple(keys.shape[1:]))
                state = self.insert(state, np.int32(s), logits, pre, keys[row], np.int32(limits[row]))
                occupant[s] = row
                remaining[prompt] -= 1
                if not remaining[prompt]:
                    del prefilled[prompt]
            if all(o is None for o in occupant):
                return results
            state, n = self.steps(params, state, bool(waiting))
            self.slot_steps += int(n) * slots
