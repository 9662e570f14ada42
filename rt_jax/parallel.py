"""Device mesh and logical-axis sharding rules.

Models name the axes of their parameters with logical names (`rt_jax.models.logical_axes`);
this module maps those names to the mesh axes (data, fsdp, tensor). Changing the
parallelism of a run means changing the mesh sizes or the rules table, never model code.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from rt_jax.errors import UserError

MESH_AXES = ("data", "fsdp", "tensor")
BATCH_AXES = ("data", "fsdp")  # the batch is split over both; fsdp also splits params

# logical axis name -> mesh axis (or tuple of mesh axes, or None = replicated)
LOGICAL_RULES: tuple[tuple[str, Any], ...] = (
    ("batch", BATCH_AXES),
    ("length", None),
    ("embed", "fsdp"),
    ("mlp", "tensor"),
    ("heads", "tensor"),
    ("kv_heads", "tensor"),  # grouped-query K/V heads; replicated where they do not divide the axis
    ("kv", None),
    ("vocab", "tensor"),
    ("relpos_buckets", None),
    ("layers", None),
)


def mesh_shape(mesh_config: Mapping[str, int], num_devices: int) -> tuple[int, int, int]:
    """Sizes of (data, fsdp, tensor); one size may be -1 to take the remaining devices."""
    sizes = [int(mesh_config[a]) for a in MESH_AXES]
    fill = [i for i, s in enumerate(sizes) if s == -1]
    if len(fill) > 1 or any(s == 0 or s < -1 for s in sizes):
        raise UserError(f"config.mesh {dict(zip(MESH_AXES, sizes))}: expected positive sizes, at most one -1")
    known = int(np.prod([s for s in sizes if s != -1]))
    if fill:
        if num_devices % known:
            raise UserError(
                f"config.mesh {dict(zip(MESH_AXES, sizes))}: {num_devices} devices are not divisible by {known}"
            )
        sizes[fill[0]] = num_devices // known
    if int(np.prod(sizes)) > num_devices:
        raise UserError(
            f"config.mesh {dict(zip(MESH_AXES, sizes))} needs {int(np.prod(sizes))} devices, "
            f"only {num_devices} available"
        )
    return tuple(sizes)  # a smaller mesh uses the first devices (e.g. 1 of 8 in tests)


def make_mesh(mesh_config: Mapping[str, int], devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A (data, fsdp, tensor) mesh over `devices` (default: all devices of all hosts)."""
    devices = list(jax.devices() if devices is None else devices)
    shape = mesh_shape(mesh_config, len(devices))
    n = int(np.prod(shape))
    if n == len(devices):
        try:  # topology-aware order on TPU/GPU; plain order elsewhere
            from jax.experimental import mesh_utils

            grid = mesh_utils.create_device_mesh(shape, devices=devices)
        except Exception:  # noqa: BLE001 - CPU and odd topologies
            grid = np.asarray(devices).reshape(shape)
    else:
        grid = np.asarray(devices[:n]).reshape(shape)
    return Mesh(grid, MESH_AXES)


def data_parallel_size(mesh: Mesh) -> int:
    return int(np.prod([mesh.shape[a] for a in BATCH_AXES]))


def logical_to_spec(logical_axes: Sequence[str | None], rules=LOGICAL_RULES) -> P:
    """PartitionSpec for one array; a mesh axis is used at most once per array."""
    table = dict(rules)
    used: set[str] = set()
    spec = []
    for name in logical_axes:
        target = table.get(name) if name is not None else None
        axes = (target,) if isinstance(target, str) else tuple(target or ())
        axes = tuple(a for a in axes if a not in used)
        used.update(axes)
        spec.append(axes[0] if len(axes) == 1 else (axes or None))
    return P(*spec)


def fit_spec(spec: P, shape: Sequence[int], mesh: Mesh) -> P:
    """Drops mesh axes from dimensions they do not divide (e.g. GPT-2's vocab of 50257)."""
    fitted = []
    for dim, entry in zip(shape, tuple(spec) + (None,) * (len(shape) - len(spec))):
        axes = (entry,) if isinstance(entry, str) else tuple(entry or ())
        kept, size = [], 1
        for a in axes:
            if dim % (size * mesh.shape[a]) == 0:
                kept.append(a)
                size *= mesh.shape[a]
        fitted.append(kept[0] if len(kept) == 1 else (tuple(kept) or None))
    return P(*fitted)


def _is_axes_leaf(x) -> bool:
    return isinstance(x, tuple) and all(isinstance(a, (str, type(None))) for a in x)


def param_shardings(axes_tree, shapes_tree, mesh: Mesh, rules=LOGICAL_RULES):
    """NamedShardings for a params pytree from its logical axes and shapes (arrays or
    ShapeDtypeStructs)."""

    def one(axes, x):
        if len(axes) != len(x.shape):
            raise ValueError(f"logical axes {axes} do not match shape {x.shape}")
        return NamedSharding(mesh, fit_spec(logical_to_spec(axes, rules), x.shape, mesh))

    return jax.tree.map(one, axes_tree, shapes_tree, is_leaf=_is_axes_leaf)


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Rows split over (data, fsdp), the rest replicated."""
    return NamedSharding(mesh, P(BATCH_AXES))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def check_batch_size(batch_size: int, mesh: Mesh, grad_accum_steps: int = 1, flag: str = "config.train.batch_size"):
    """Every microbatch must split evenly over the data-parallel devices."""
    dp = data_parallel_size(mesh)
    if batch_size % grad_accum_steps:
        raise UserError(f"{flag}={batch_size} is not divisible by config.train.grad_accum_steps={grad_accum_steps}")
    micro = batch_size // grad_accum_steps
    if micro % dp:
        raise UserError(
            f"{flag}={batch_size} (microbatch {micro}) is not divisible by the data-parallel size "
            f"{dp} (mesh data={mesh.shape['data']} x fsdp={mesh.shape['fsdp']})"
        )


def global_batch(local_batch: Mapping[str, np.ndarray], mesh: Mesh) -> dict[str, jax.Array]:
    """Global arrays from this host's rows (one host: the whole batch). Same path on every host."""
    sharding = batch_sharding(mesh)
    return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v)) for k, v in local_batch.items()}


def initialize_distributed(distributed_config) -> None:
    """`jax.distributed.initialize` for multi-host runs; nothing on a single host."""
    n = int(distributed_config.num_processes)
    if n <= 1:
        return
    kwargs = {"num_processes": n}
    if distributed_config.coordinator_address:
        kwargs["coordinator_address"] = distributed_config.coordinator_address
    if int(distributed_config.process_id) >= 0:
        kwargs["process_id"] = int(distributed_config.process_id)
    jax.distributed.initialize(**kwargs)
