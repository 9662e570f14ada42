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
    kind "linear": torch.nn.Linear [out, in], transposed; several keys are stacked on the axis
    after the input dims (fused q/k/v).
    tied_to: the tensor read instead when a one-key entry is missing from a checkpoint, as
    transformers ties an untied head to the embedding then.
    layers > 0: a parameter stacked over that many layers on its axis 0 (scanned layers); each
    hf key holds "{layer}" and hf_shape is the shape of one layer's tensor."""

    path: tuple[str, ...]
    hf_keys: tuple[str, ...]
    hf_shape: tuple[int, ...]
    kind: str = "reshape"
    tied_to: str | None = None
    layers: int = 0

    def keys_of_layer(self, layer: int | None) -> tuple[str, ...]:
        return tuple(k.format(layer=layer) for k in self.hf_keys) if self.layers else self.hf_keys

    def all_keys(self) -> list[str]:
        return [k for layer in range(self.layers or 1) for k in self.keys_of_layer(layer)]


def num_params(table: list[Entry]) -> int:
    """Parameters the table describes: the size of every transformers tensor it names."""
    return sum(math.prod(entry.hf_shape) * len(entry.all_keys()) for entry in table)


def _prefix(dims: list[int], shape, size: int) -> list[int]:
    """The leading dims of `dims` whose sizes multiply to `size`."""
    taken, product = [], 1
    for d in dims:
        if product == size and taken:
            break
        taken.append(d)
        product *= shape[d]
    if product != size:
        raise ValueError(f"shape {tuple(shape)} does not factor into {size}")
    return taken


def _layout(entry: Entry, shape) -> tuple[list[list[int]], int | None]:
    """How one layer's rt_jax parameter of `shape` is laid out in the transformers tensor: for each
    hf dim, the rt_jax dims it flattens (in order), and the rt_jax axis indexing entry.hf_keys
    (None for one key)."""
    dims = list(range(len(shape)))
    if entry.kind == "reshape":
        groups, rest = [], dims
        for size in entry.hf_shape[:-1]:
            groups.append(_prefix(rest, shape, size))
            rest = rest[len(groups[-1]) :]
        return groups + [rest], None
    out_dim, in_dim = entry.hf_shape
    inputs = _prefix(dims, shape, in_dim)
    key_axis = len(inputs) if len(entry.hf_keys) > 1 else None
    outputs = dims[len(inputs) + (key_axis is not None) :]
    return [outputs, inputs], key_axis


def _read_layer(entry: Entry, reader, keys, shape, index):
    """Block `index` of one layer's parameter. Each hf dim is read sliced along the first rt_jax
    dim it flattens (the heads of a q projection, the vocabulary of an embedding: what a mesh
    shards); slices of the other dims it flattens are taken after reading."""
    groups, key_axis = _layout(entry, shape)
    hf_index, block_shape, post, order = [], [], [], []
    for group in groups:
        lead, inner = group[0], int(np.prod([shape[d] for d in group[1:]], dtype=np.int64))
        start, stop, _ = index[lead].indices(shape[lead])
        hf_index.append(slice(start * inner, stop * inner))
        block_shape += [stop - start] + [shape[d] for d in group[1:]]
        post += [slice(None)] + [index[d] for d in group[1:]]
        order += group
    selected = keys if key_axis is None else keys[index[key_axis]]
    blocks = [
        np.asarray(reader.read(key, tuple(hf_index))).reshape(block_shape)[tuple(post)].transpose(np.argsort(order))
        for key in selected
    ]
    return blocks[0] if key_axis is None else np.stack(blocks, axis=key_axis)


def read_block(entry: Entry, reader, shape: tuple[int, ...], index: tuple[slice, ...] | None = None) -> np.ndarray:
    """Block `index` (slices, default everything) of the rt_jax parameter of `shape`, read from the
    transformers tensors without loading more of them than the block covers. reader.read(key,
    slices) returns that slice of a tensor."""
    index = tuple(index) if index is not None else tuple(slice(None) for _ in shape)
    if not entry.layers:
        return _read_layer(entry, reader, entry.hf_keys, shape, index)
    layers = range(*index[0].indices(shape[0]))
    return np.stack([_read_layer(entry, reader, entry.keys_of_layer(i), shape[1:], index[1:]) for i in layers])


def to_hf(entry: Entry, param) -> list:
    """One rt_jax parameter -> its transformers tensor(s)."""
    if entry.kind == "reshape":
        return [param.reshape(entry.hf_shape)]
    out_dim, in_dim = entry.hf_shape
    if len(entry.hf_keys) == 1:
        return [param.reshape(in_dim, out_dim).T]
    return [param[:, n].reshape(in_dim, out_dim).T for n in range(len(entry.hf_keys))]


def params_from_state(
    table: list[Entry], reader, shapes: Mapping[tuple[str, ...], tuple[int, ...]], cast, shardings=None
) -> dict:
    """Builds the nested params dict; every name and shape is checked before anything is read.

    reader has .source (a name for messages), .keys (set of tensor names), .shape(key) and
    .read(key, slices); shapes maps each rt_jax path to its expected shape; cast turns a numpy
    block into the parameter's dtype. With `shardings` (rt_jax path -> jax Sharding) each
    parameter is assembled on its devices from the blocks they hold, so no host holds more than
    one device's block of a parameter at a time (jax.make_array_from_callback)."""
    resolved: dict[str, str] = {}
    missing = []
    for entry in table:
        for key in entry.all_keys():
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
        for key in entry.all_keys():
            shape = tuple(reader.shape(resolved[key]))
            if shape != entry.hf_shape:
                raise UserError(
                    f"{reader.source}: tensor {key!r} has shape {shape}, expected {entry.hf_shape} from the config"
                )
    resolving = _Resolved(reader, resolved)
    params: dict = {}
    for entry in table:
        shape = tuple(shapes[entry.path])
        if shardings is None:
            value = cast(read_block(entry, resolving, shape))
        else:
            import jax

            value = jax.make_array_from_callback(
                shape, shardings[entry.path], lambda index, e=entry: cast(read_block(e, resolving, shape, index))
            )
        node = params
        for name in entry.path[:-1]:
            node = node.setdefault(name, {})
        node[entry.path[-1]] = value
    return params


class _Resolved:
    """A reader whose keys are the table's names (a missing tied head reads the embedding)."""

    def __init__(self, reader, names: Mapping[str, str]):
        self._reader, self._names = reader, names

    def read(self, key, index):
        return self._reader.read(self._names[key], index)


def hf_tensors(table: list[Entry], params: Mapping):
    """(transformers name, array) pairs, one layer of a stacked parameter at a time (for saving
    without another full copy of the model)."""
    for entry in table:
        node = params
        for name in entry.path:
            node = node[name]
        for layer in range(entry.layers) if entry.layers else [None]:
            value = node if layer is None else node[layer]
            yield from zip(entry.keys_of_layer(layer), to_hf(entry, value))


def state_from_params(table: list[Entry], params: Mapping) -> dict:
    """Flat {transformers name: array} for saving."""
    return dict(hf_tensors(table, params))
