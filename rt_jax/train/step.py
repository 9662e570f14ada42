"""Pure train and eval steps: token cross-entropy on target tokens only, AdamW update,
gradient accumulation over microbatches, mixed precision, remat; jitted on a mesh."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from rt_jax import parallel
from rt_jax.errors import UserError
from rt_jax.train.state import TrainState, cast_params

DECODER_KEYS = ("input_ids", "segment_ids", "positions", "targets", "loss_mask")
ENCODER_DECODER_KEYS = (
    "input_ids",
    "encoder_segment_ids",
    "decoder_input_ids",
    "decoder_segment_ids",
    "targets",
    "loss_mask",
)
REMAT_POLICIES = {
    "none": None,
    "layer": None,  # per-layer remat inside the model (built with remat=True by the loop)
    "dots": jax.checkpoint_policies.checkpoint_dots,
    "minimal": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
}


def batch_keys(is_encoder_decoder: bool) -> tuple[str, ...]:
    return ENCODER_DECODER_KEYS if is_encoder_decoder else DECODER_KEYS


def logits_fn(module, is_encoder_decoder: bool, dropout: bool = False) -> Callable:
    """(params, batch, rng) -> logits [B, L, V], calling the model as the batch contract says."""

    def apply(params, batch, rng):
        kwargs = {"deterministic": False, "rngs": {"dropout": rng}} if dropout else {}
        if is_encoder_decoder:
            return module.apply(
                {"params": params},
                batch["input_ids"],
                attention_mask=batch["encoder_segment_ids"] > 0,
                decoder_input_ids=batch["decoder_input_ids"],
                decoder_attention_mask=batch["decoder_segment_ids"] > 0,
                encoder_segment_ids=batch["encoder_segment_ids"],
                decoder_segment_ids=batch["decoder_segment_ids"],
                **kwargs,
            )
        return module.apply(
            {"params": params},
            batch["input_ids"],
            position_ids=batch["positions"],
            segment_ids=batch["segment_ids"],
            **kwargs,
        )

    return apply


@jax.custom_vjp
def cross_entropy(logits, targets):
    """Per-token (cross-entropy, target is a top logit) over float32 logits [..., V].

    One max and one exp-sum pass over [..., V]; "top" (target logit >= the max) replaces a
    separate argmax pass for token accuracy (it differs from argmax only on exact ties). The
    custom gradient softmax - onehot(target) is one elementwise pass: autodiff of
    take_along_axis scatters into a zero [..., V] tensor (an extra pass on XLA:CPU)."""
    return _cross_entropy_fwd(logits, targets)[0]


def _cross_entropy_fwd(logits, targets):
    top = jnp.max(logits, axis=-1)
    log_z = top + jnp.log(jnp.sum(jnp.exp(logits - top[..., None]), axis=-1))
    target_logit = jnp.take_along_axis(logits, targets[..., None].astype(jnp.int32), axis=-1)[..., 0]
    return (log_z - target_logit, target_logit >= top), (logits, log_z, targets)


def _cross_entropy_bwd(residuals, cotangents):
    logits, log_z, targets = residuals
    g = cotangents[0]
    vocab = jax.lax.broadcasted_iota(jnp.int32, logits.shape, logits.ndim - 1)
    onehot = (vocab == targets[..., None].astype(jnp.int32)).astype(logits.dtype)
    return (jnp.exp(logits - log_z[..., None]) - onehot) * g[..., None], None


cross_entropy.defvjp(_cross_entropy_fwd, _cross_entropy_bwd)


def token_statistics(logits, targets, loss_mask):
    """Summed cross-entropy, correct (top-1) predictions and count over target tokens (f32)."""
    mask = loss_mask.astype(jnp.float32)
    ce, top = cross_entropy(logits.astype(jnp.float32), targets)
    return {"ce_sum": jnp.sum(ce * mask), "correct": jnp.sum(top.astype(jnp.float32) * mask), "count": jnp.sum(mask)}


def _split_microbatches(batch, steps: int, mesh: Mesh | None):
    """[B, ...] -> [steps, B/steps, ...]; microbatch j takes rows j, j+steps, ... so every device
    keeps its share of each microbatch (no resharding)."""

    def split(x):
        x = x.reshape((x.shape[0] // steps, steps) + x.shape[1:]).swapaxes(0, 1)
        if mesh is not None:
            x = jax.lax.with_sharding_constraint(x, NamedSharding(mesh, P(None, parallel.BATCH_AXES)))
        return x

    return jax.tree.map(split, batch)


def make_train_step(
    module,
    is_encoder_decoder: bool,
    optimizer: optax.GradientTransformation,
    schedule: optax.Schedule | None = None,
    *,
    compute_dtype=jnp.float32,
    grad_accum_steps: int = 1,
    remat: str = "none",
    dropout: bool = False,
    mesh: Mesh | None = None,
) -> Callable:
    """`train_step(state, batch, rng) -> (state, metrics)`, pure. The loss is the mean token
    cross-entropy over all target tokens of the whole batch (all microbatches), like the
    reference's mean over non-ignored labels."""
    if remat not in REMAT_POLICIES:
        raise UserError(f"config.train.remat={remat!r}: expected one of {', '.join(REMAT_POLICIES)}")
    forward = logits_fn(module, is_encoder_decoder, dropout)

    def summed_loss(params, batch, rng):
        stats = token_statistics(
            forward(cast_params(params, compute_dtype), batch, rng), batch["targets"], batch["loss_mask"]
        )
        return stats["ce_sum"], stats

    if REMAT_POLICIES[remat] is not None:
        summed_loss = jax.checkpoint(summed_loss, policy=REMAT_POLICIES[remat])
    grad_fn = jax.grad(summed_loss, has_aux=True)

    def train_step(state: TrainState, batch, rng):
        rng = jax.random.fold_in(rng, state.step)
        if grad_accum_steps == 1:
            grads, stats = grad_fn(state.params, batch, rng)
        else:
            micro = _split_microbatches(batch, grad_accum_steps, mesh)

            def accumulate(carry, inputs):
                mb, i = inputs
                g, s = grad_fn(state.params, mb, jax.random.fold_in(rng, i))
                return jax.tree.map(jnp.add, carry, (g, s)), None

            zeros = jax.tree.map(lambda p: jnp.zeros(p.shape, jnp.float32), state.params)
            zero_stats = {k: jnp.zeros((), jnp.float32) for k in ("ce_sum", "correct", "count")}
            (grads, stats), _ = jax.lax.scan(accumulate, (zeros, zero_stats), (micro, jnp.arange(grad_accum_steps)))
        count = jnp.maximum(stats["count"], 1.0)
        grads = jax.tree.map(lambda g, p: (g / count).astype(p.dtype), grads, state.params)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = {
            "loss": stats["ce_sum"] / count,
            "token_accuracy": stats["correct"] / count,
            "grad_norm": optax.global_norm(grads),
            "target_tokens": stats["count"],
            "learning_rate": schedule(state.step) if schedule is not None else jnp.nan,
        }
        return TrainState(step=state.step + 1, params=params, opt_state=opt_state), metrics

    return train_step


def make_eval_step(module, is_encoder_decoder: bool, compute_dtype=jnp.float32) -> Callable:
    """`eval_step(params, batch) -> {ce_sum, correct, count}` (sums, so batches add up)."""
    forward = logits_fn(module, is_encoder_decoder)

    def eval_step(params, batch):
        logits = forward(cast_params(params, compute_dtype), batch, None)
        return token_statistics(logits, batch["targets"], batch["loss_mask"])

    return eval_step


def jit_train_step(train_step: Callable, state_sharding: TrainState, mesh: Mesh, keys: tuple[str, ...]):
    """jax.jit with explicit shardings: state as given (donated), batch rows over (data, fsdp)."""
    batch_sh = {k: parallel.batch_sharding(mesh) for k in keys}
    return jax.jit(
        train_step,
        in_shardings=(state_sharding, batch_sh, parallel.replicated(mesh)),
        out_shardings=(state_sharding, parallel.replicated(mesh)),
        donate_argnums=(0,),
    )


def jit_eval_step(eval_step: Callable, params_sharding, mesh: Mesh, keys: tuple[str, ...]):
    batch_sh = {k: parallel.batch_sharding(mesh) for k in keys}
    return jax.jit(eval_step, in_shardings=(params_sharding, batch_sh), out_shardings=parallel.replicated(mesh))
