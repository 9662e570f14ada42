"""The train state: a plain pytree (step, params, optimizer state), sharded as a whole."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import struct
from jax.sharding import Mesh

from rt_jax import parallel


@struct.dataclass
class TrainState:
    step: jax.Array  # int32 scalar: optimizer updates done
    params: dict
    opt_state: optax.OptState


def state_shardings(abstract_state: TrainState, param_axes, mesh: Mesh, optimizer) -> TrainState:
    """Shardings for every leaf: params by their logical axes, the parameter-shaped parts of
    the optimizer state (Adam's mu and nu) like their params, everything else replicated."""
    params_sh = parallel.param_shardings(param_axes, abstract_state.params, mesh)
    opt_sh = optax.tree_map_params(
        optimizer,
        lambda _, sharding: sharding,
        abstract_state.opt_state,
        params_sh,
        transform_non_params=lambda _: parallel.replicated(mesh),
    )
    return TrainState(step=parallel.replicated(mesh), params=params_sh, opt_state=opt_sh)


def create_state(params, optimizer, shardings: TrainState | None = None) -> TrainState:
    """A fresh state at step 0; placed by `shardings` when given (params are not copied twice)."""

    def init(p):
        return TrainState(step=jnp.zeros((), jnp.int32), params=p, opt_state=optimizer.init(p))

    if shardings is None:
        return jax.jit(init)(params)
    params = jax.device_put(params, shardings.params)
    return jax.jit(init, out_shardings=shardings)(params)


def abstract_state(params, optimizer) -> TrainState:
    """Shapes and dtypes of the state, without allocating it."""
    return jax.eval_shape(
        lambda p: TrainState(step=jnp.zeros((), jnp.int32), params=p, opt_state=optimizer.init(p)), params
    )


def cast_params(params, dtype):
    """Parameters as they are used in a forward pass (f32 master copy kept by the caller)."""
    return jax.tree.map(lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x, params)
