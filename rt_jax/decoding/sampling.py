"""Greedy decoding and sampling (temperature, top-k, top-p) in one jax.lax.while_loop.

Each row carries its own PRNG key and step t draws with fold_in(key, t), so a row's
sample depends only on its key, not on which batch or bucket it was decoded in.
"""

import jax
import jax.numpy as jnp

from rt_jax.decoding import stopping

RUNNING, EOS, STOP, LENGTH = 0, 1, 2, 3


def filter_logits(logits, temperature: float, top_k: int, top_p: float):
    """transformers' warper order: temperature, then top-k, then top-p; removed -> -inf."""
    logits = logits / temperature
    if top_k > 0:
        kth = jax.lax.top_k(logits, min(top_k, logits.shape[-1]))[0][..., -1:]
        logits = jnp.where(logits < kth, -jnp.inf, logits)
    if top_p < 1.0:
        desc = jnp.sort(logits, axis=-1)[..., ::-1]
        probs = jax.nn.softmax(desc, axis=-1)
        mass_before = jnp.cumsum(probs, axis=-1) - probs
        # keep the smallest prefix reaching top_p; the most likely token is always kept
        keep = (mass_before < top_p).at[..., 0].set(True)
        cutoff = jnp.min(jnp.where(keep, desc, jnp.inf), axis=-1, keepdims=True)
        logits = jnp.where(logits < cutoff, -jnp.inf, logits)
    return logits


def choose_tokens(logits, keys, t, config):
    """Next ids [R]: argmax for greedy (or temperature 0), else a draw per row with
    fold_in(key, t); t is the step, one for all rows or [R] (each row's own step)."""
    if config.strategy == "greedy" or config.temperature == 0.0:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    filtered = filter_logits(logits, config.temperature, config.top_k, config.top_p)
    step_keys = jax.vmap(jax.random.fold_in)(keys, jnp.broadcast_to(t, keys.shape[:1]))
    return jax.vmap(jax.random.categorical)(step_keys, filtered).astype(jnp.int32)


def finish_reason(token, window, t, limits, eos_id, patterns):
    """Why a row stops after emitting `token` as its token t (RUNNING: it goes on). window: its
    latest ids for the stop patterns."""
    return jnp.select(
        [token == eos_id, stopping.matches_stop(window, patterns), t + 1 >= limits], [EOS, STOP, LENGTH], RUNNING
    )


def decode_loop(adapter, config, params, ids, mask, limits, keys, eos_id, pad_id, patterns):
    """Greedy or sampled decoding of a padded batch.

    ids/mask [B, P], one row per prompt: the prompt is prefilled once and its state repeated
    for its R / B rows (the samples). limits [R] most new tokens per row; keys [R] PRNG keys.
    Returns (tokens [R, N], lengths [R], reasons [R]).
    """
    logits, model_state = adapter.prefill(params, ids, mask)
    rows, n = limits.shape[0], config.max_new_tokens
    repeat = lambda x: jnp.repeat(x, rows // ids.shape[0], axis=0)
    logits, model_state = repeat(logits), jax.tree.map(repeat, model_state)
    width = patterns.shape[1]
    carry = dict(
        t=jnp.int32(0),
        logits=logits,
        model=model_state,
        buffer=jnp.full((rows, width + n), -1, jnp.int32),
        done=limits <= 0,
        length=jnp.zeros(rows, jnp.int32),
        reason=jnp.where(limits <= 0, LENGTH, RUNNING),
    )

    def cond(c):
        return (c["t"] < n) & ~jnp.all(c["done"])

    def body(c):
        t = c["t"]
        token = jnp.where(c["done"], pad_id, choose_tokens(c["logits"], keys, t, config))
        buffer = jax.lax.dynamic_update_slice_in_dim(c["buffer"], token[:, None], width + t, axis=1)
        window = jax.lax.dynamic_slice_in_dim(buffer, t + 1, width, axis=1)
        reason = finish_reason(token, window, t, limits, eos_id, patterns)
        running = ~c["done"]
        logits, model_state = adapter.step(params, token, c["model"], t)
        return dict(
            t=t + 1,
            logits=logits,
            model=model_state,
            buffer=buffer,
            done=c["done"] | (reason != RUNNING),
            length=jnp.where(running, t + 1, c["length"]),
            reason=jnp.where(running, reason, c["reason"]),
        )

    out = jax.lax.while_loop(cond, body, carry)
    return out["buffer"][:, width:], out["length"], out["reason"]
