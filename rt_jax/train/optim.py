"""AdamW with the paper's defaults plus warmup, linear/cosine decay and clipping."""

from __future__ import annotations

import optax

from rt_jax.errors import UserError

SCHEDULES = ("constant", "linear", "cosine")


def learning_rate_schedule(train_config, total_steps: int) -> optax.Schedule:
    """Linear warmup from 0 over `warmup_steps`, then constant, linear or cosine decay to 0."""
    lr = float(train_config.learning_rate)
    warmup = int(train_config.warmup_steps)
    kind = train_config.schedule
    if kind not in SCHEDULES:
        raise UserError(f"config.train.schedule={kind!r}: expected one of {', '.join(SCHEDULES)}")
    decay_steps = max(total_steps - warmup, 1)
    if kind == "constant":
        after = optax.constant_schedule(lr)
    elif kind == "linear":
        after = optax.linear_schedule(lr, 0.0, decay_steps)
    else:
        after = optax.cosine_decay_schedule(lr, decay_steps)
    if warmup <= 0:
        return after
    return optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), after], [warmup])


def make_optimizer(train_config, total_steps: int) -> optax.GradientTransformation:
    """optax AdamW (torch.optim.AdamW semantics: decoupled weight decay scaled by lr).

    Biases and LayerNorm scales are decayed too, as torch's AdamW over model.parameters()
    does in the reference."""
    schedule = learning_rate_schedule(train_config, total_steps)
    adamw = optax.adamw(
        schedule,
        b1=float(train_config.adam_b1),
        b2=float(train_config.adam_b2),
        eps=float(train_config.adam_eps),
        weight_decay=float(train_config.weight_decay),
    )
    if float(train_config.max_grad_norm) > 0:
        return optax.chain(optax.clip_by_global_norm(float(train_config.max_grad_norm)), adamw)
    return adamw
