"""Beam search with transformers' generate semantics, as one jax.lax.while_loop.

Mirrors transformers' (v4.50+) vectorised beam search: each step keeps the top 2K
continuations of K beams, the best K that did not stop keep running, the top K among the
stopped ones compete with the finished hypotheses (score / generated_length**length_penalty),
and the loop ends per transformers' early-stopping heuristic. Shapes: B items, K beams,
rows B*K ordered item-major (row = b*K + k), N max new tokens.
"""

import jax
import jax.numpy as jnp

from rt_jax.decoding import stopping

NEG = -1.0e9  # transformers' "impossible" score; kept identical so ties break the same way


def _gather(x, idx):
    """x [B, M, ...], idx [B, J] -> [B, J, ...]"""
    return jnp.take_along_axis(x, idx.reshape(idx.shape + (1,) * (x.ndim - 2)), axis=1)


def beam_loop(adapter, config, params, ids, mask, limits, eos_id, patterns):
    """ids/mask [B, P] (one row per item); limits [B] most new tokens per item.

    Returns (tokens [B, K, N], lengths [B, K], scores [B, K]) best first."""
    k, n = config.num_beams, config.max_new_tokens
    lp, early = config.length_penalty, config.early_stopping
    batch = ids.shape[0]
    width = patterns.shape[1]
    keep = 2 * k  # max(2, 1 + number of eos ids) * K with one eos id

    logits, model_state = adapter.prefill(params, ids, mask)
    repeat = lambda x: jnp.repeat(x, k, axis=0)
    logits, model_state = repeat(logits), jax.tree.map(repeat, model_state)

    empty = jnp.full((batch, k, width + n), -1, jnp.int32)
    carry = dict(
        t=jnp.int32(0),
        logits=logits,
        model=model_state,
        running=empty,
        running_scores=jnp.zeros((batch, k)).at[:, 1:].set(NEG),
        sequences=empty,
        scores=jnp.full((batch, k), NEG),
        lengths=jnp.zeros((batch, k), jnp.int32),
        finished=jnp.zeros((batch, k), bool),
        improvable=jnp.ones((batch,), bool),
        all_hit=jnp.bool_(False),
    )
    top_k_mask = jnp.arange(keep) < k
    best_length_never = limits.astype(jnp.float32)

    def cond(c):
        open_beam = ~(jnp.all(c["finished"]) & (early is True))
        return (c["t"] < n) & jnp.any(c["improvable"]) & open_beam & ~c["all_hit"]

    def body(c):
        t = c["t"]
        log_probs = jax.nn.log_softmax(c["logits"], axis=-1)
        vocab = log_probs.shape[-1]
        log_probs = log_probs.reshape(batch, k, vocab) + c["running_scores"][:, :, None]
        top_scores, top_index = jax.lax.top_k(log_probs.reshape(batch, k * vocab), keep)
        parent, token = top_index // vocab, (top_index % vocab).astype(jnp.int32)
        candidates = _gather(c["running"], parent)
        candidates = jax.lax.dynamic_update_slice_in_dim(candidates, token[:, :, None], width + t, axis=2)
        window = jax.lax.dynamic_slice_in_dim(candidates, t + 1, width, axis=2)
        hit = (token == eos_id) | stopping.matches_stop(window, patterns) | (t + 1 >= limits)[:, None]

        # the K best continuations that did not stop keep running
        running_scores_all = top_scores + hit * NEG
        next_index = jax.lax.top_k(running_scores_all, k)[1]
        running = _gather(candidates, next_index)
        running_scores = _gather(running_scores_all, next_index)
        running_parent = _gather(parent, next_index)

        # stopped candidates among the top K compete with the finished hypotheses
        just_finished = hit & top_k_mask[None, :]
        gen_len = (t + 1).astype(jnp.float32)
        fin_scores = top_scores / gen_len**lp
        full = jnp.all(c["finished"], axis=-1, keepdims=True) & (early is True)
        fin_scores = fin_scores + full * NEG + (~c["improvable"])[:, None] * NEG + (~just_finished) * NEG
        merged_scores = jnp.concatenate([c["scores"], fin_scores], axis=1)
        best = jax.lax.top_k(merged_scores, k)[1]
        sequences = _gather(jnp.concatenate([c["sequences"], candidates], axis=1), best)
        scores = _gather(merged_scores, best)
        lengths = _gather(jnp.concatenate([c["lengths"], jnp.full((batch, keep), t + 1, jnp.int32)], 1), best)
        finished = _gather(jnp.concatenate([c["finished"], just_finished], axis=1), best)

        # reorder the cache to the surviving beams, then feed their newest tokens
        rows = (jnp.arange(batch)[:, None] * k + running_parent).reshape(-1)
        model_state = jax.tree.map(lambda x: x[rows], c["model"])
        fed = jax.lax.dynamic_slice_in_dim(running, width + t, 1, axis=2).reshape(-1)
        logits, model_state = adapter.step(params, fed, model_state, t)

        # early-stopping heuristic: can a running beam still beat the worst finished one?
        if early == "never" and lp > 0.0:
            best_len = best_length_never
        else:
            best_len = jnp.full((batch,), gen_len)
        best_running = running_scores[:, 0] / best_len**lp
        worst_finished = jnp.where(finished, jnp.min(scores, axis=1, keepdims=True), NEG)
        improvable = c["improvable"] & jnp.any(best_running[:, None] > worst_finished, axis=-1)
        return dict(
            t=t + 1,
            logits=logits,
            model=model_state,
            running=running,
            running_scores=running_scores,
            sequences=sequences,
            scores=scores,
            lengths=lengths,
            finished=finished,
            improvable=improvable,
            all_hit=jnp.all(hit),
        )

    out = jax.lax.while_loop(cond, body, carry)
    return out["sequences"][:, :, width:], out["lengths"], out["scores"]
