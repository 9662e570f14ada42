"""Mapping between rt_jax parameter trees and transformers' PyTorch state-dict names and layouts.

Each model family describes its architecture by one table of `Entry`s (`Family.tensor_table`, in
the family's module); loading and saving both walk that table, so the two directions cannot drift
apart, and the parameter count can be read off it without building the model.
"""

import dataclasses
import math
from typing import Mapping

import numpy as np

from rt_jax.errors import UserError


@dataclasses.dataclass(frozen=True)
class Entry:
    """One rt_jax parameter and the transformers tensor(s) it is made of.

    kind "reshape": same memory order (GPT-2's Conv1D stores [in, out] like us).
    kind "linear": torch.nn.Linear [out, in], transposed; several keys are stacked on axis 1
    (fused q/k/v).
    tied_to: the tensor read instead when a one-key entry is missing from a checkpoint, as
    transformers ties an untied head to the embedding then."""

    path: tuple[str, ...]
    hf_keys: tuple[str, ...]
    hf_shape: tuple[int, ...]
    kind: str = "reshape"
    tied_to: str | None = None


def num_params(table: list[Entry]) -> int:
    """Parameters the table describes: the size of every transformers tensor it names."""
    return sum(math.prod(entry.hf_shape) * len(entry.hf_keys) for entry in table)


def to_ours(entry: Entry, tensors: list, shape: tuple[int, ...]):
    """transformers tensor(s) -> one rt_jax parameter of `shape` (numpy or jax arrays alike)."""
    if entry.kind == "reshape":
        return tensors[0].reshape(shape)
    parts = [t.T for t in tensors]
    if len(parts) == 1:
        return parts[0].reshape(shape)
    stack = np.stack if isinstance(parts[0], np.ndarray) else _jnp().stack
    return stack(parts, axis=1).reshape(shape)


def to_hf(entry: Entry, param) -> list:
    """One rt_jax parameter -> its transformers tensor(s)."""
    if entry.kind == "reshape":
        return [param.reshape(entry.hf_shape)]
    out_dim, in_dim = entry.hf_shape
    if len(entry.hf_keys) == 1:
        return [param.reshape(in_dim, out_dim).T]
    return [param[:, n].reshape(in_dim, out_dim).T for n in range(len(entry.hf_keys))]


def _jnp():
    import jax.numpy as jnp

    return jnp


def params_from_state(table: list[Entry], reader, shapes: Mapping[tuple[str, ...], tuple[int, ...]], cast) -> dict:
    """Builds the nested params dict; every name and shape is checked before anything is converted.

    reader has .source (a name for messages), .keys (set of tensor names), .shape(key), .load(key);
    shapes maps each rt_jax path to its expected shape; cast turns a loaded tensor into the final array."""
    resolved: dict[str, str] = {}
    missing = []
    for entry in table:
        for key in entry.hf_keys:
            if key in reader.keys:
                resolved[key] = key
            elif entry.tied_to in reader.keys:
                resolved[key] = entry.tied_to
            else:
                missing.append(key)
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise UserError(f"{reader.source}: tensor {missing[0]!r} is missing{more}")
    for entry in table:
        for key in entry.hf_keys:
            shape = tuple(reader.shape(resolved[key]))
            if shape != entry.hf_shape:
                raise UserError(
                    f"{reader.source}: tensor {key!r} has shape {shape}, expected {entry.hf_shape} from the config"
                )
    params: dict = {}
    for entry in table:
        value = to_ours(entry, [cast(reader.load(resolved[k])) for k in entry.hf_keys], shapes[entry.path])
        node = params
        for name in entry.path[:-1]:
            node = node.setdefault(name, {})
        node[entry.path[-1]] = value
    return params


def state_from_params(table: list[Entry], params: Mapping) -> dict:
    """Flat {transformers name: array} for saving."""
    state = {}
    for entry in table:
        node = params
        for name in entry.path:
            node = node[name]
        for key, tensor in zip(entry.hf_keys, to_hf(entry, node)):
            state[key] = tensor
    return state
