"""Mapping between rt_jax parameter trees and transformers' PyTorch state-dict names and layouts.

Each architecture is described by one table of `Entry`s; loading and saving both walk that table,
so the two directions cannot drift apart.
"""

import dataclasses
from typing import Mapping

import numpy as np

from rt_jax.errors import UserError
from rt_jax.models.gpt2 import GPT2Settings
from rt_jax.models.t5 import T5Settings


@dataclasses.dataclass(frozen=True)
class Entry:
    """One rt_jax parameter and the transformers tensor(s) it is made of.

    kind "reshape": same memory order (GPT-2's Conv1D stores [in, out] like us).
    kind "linear": torch.nn.Linear [out, in], transposed; several keys are stacked on axis 1
    (fused q/k/v)."""

    path: tuple[str, ...]
    hf_keys: tuple[str, ...]
    hf_shape: tuple[int, ...]
    kind: str = "reshape"


def gpt2_table(s: GPT2Settings) -> list[Entry]:
    d, f = s.n_embd, s.n_inner
    e = [Entry(("wte",), ("transformer.wte.weight",), (s.vocab_size, d))]
    if s.position_embedding == "learned":
        e.append(Entry(("wpe",), ("transformer.wpe.weight",), (s.n_positions, d)))
    for i in range(s.n_layer):
        hf, us = f"transformer.h.{i}.", f"h_{i}"
        e += [
            Entry((us, "ln_1", "scale"), (hf + "ln_1.weight",), (d,)),
            Entry((us, "ln_1", "bias"), (hf + "ln_1.bias",), (d,)),
            Entry((us, "attn", "qkv_kernel"), (hf + "attn.c_attn.weight",), (d, 3 * d)),
            Entry((us, "attn", "qkv_bias"), (hf + "attn.c_attn.bias",), (3 * d,)),
            Entry((us, "attn", "out_kernel"), (hf + "attn.c_proj.weight",), (d, d)),
            Entry((us, "attn", "out_bias"), (hf + "attn.c_proj.bias",), (d,)),
            Entry((us, "ln_2", "scale"), (hf + "ln_2.weight",), (d,)),
            Entry((us, "ln_2", "bias"), (hf + "ln_2.bias",), (d,)),
            Entry((us, "mlp", "fc_kernel"), (hf + "mlp.c_fc.weight",), (d, f)),
            Entry((us, "mlp", "fc_bias"), (hf + "mlp.c_fc.bias",), (f,)),
            Entry((us, "mlp", "proj_kernel"), (hf + "mlp.c_proj.weight",), (f, d)),
            Entry((us, "mlp", "proj_bias"), (hf + "mlp.c_proj.bias",), (d,)),
        ]
    e += [
        Entry(("ln_f", "scale"), ("transformer.ln_f.weight",), (d,)),
        Entry(("ln_f", "bias"), ("transformer.ln_f.bias",), (d,)),
    ]
    return e


def t5_table(s: T5Settings) -> list[Entry]:
    d, inner, f = s.d_model, s.num_heads * s.d_kv, s.d_ff
    e = [Entry(("shared",), ("shared.weight",), (s.vocab_size, d))]
    if not s.tied_head:
        e.append(Entry(("lm_head",), ("lm_head.weight",), (s.vocab_size, d), "linear"))

    def ffn(us, hf):
        wi = ["wi_0", "wi_1"] if s.gated else ["wi"]
        return [Entry(us + ("ffn", w), (f"{hf}DenseReluDense.{w}.weight",), (f, d), "linear") for w in wi] + [
            Entry(us + ("ffn", "wo"), (f"{hf}DenseReluDense.wo.weight",), (d, f), "linear")
        ]

    def qkv(us, hf):
        return Entry(us + ("qkv_kernel",), tuple(f"{hf}{n}.weight" for n in "qkv"), (inner, d), "linear")

    for stack, n_layers in (("encoder", s.num_layers), ("decoder", s.num_decoder_layers)):
        e.append(
            Entry(
                (stack, "relpos_bias", "embedding"),
                (f"{stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight",),
                (s.relative_attention_num_buckets, s.num_heads),
            )
        )
        for i in range(n_layers):
            us, hf = (stack, f"block_{i}"), f"{stack}.block.{i}.layer."
            e += [
                Entry(us + ("ln_self", "scale"), (hf + "0.layer_norm.weight",), (d,)),
                qkv(us + ("self_attn",), hf + "0.SelfAttention."),
                Entry(us + ("self_attn", "out_kernel"), (hf + "0.SelfAttention.o.weight",), (d, inner), "linear"),
            ]
            ffn_layer = 1
            if stack == "decoder":
                ffn_layer = 2
                e += [
                    Entry(us + ("ln_cross", "scale"), (hf + "1.layer_norm.weight",), (d,)),
                    Entry(us + ("cross_attn", "q_kernel"), (hf + "1.EncDecAttention.q.weight",), (inner, d), "linear"),
                    Entry(
                        us + ("cross_attn", "kv_kernel"),
                        (hf + "1.EncDecAttention.k.weight", hf + "1.EncDecAttention.v.weight"),
                        (inner, d),
                        "linear",
                    ),
                    Entry(
                        us + ("cross_attn", "out_kernel"), (hf + "1.EncDecAttention.o.weight",), (d, inner), "linear"
                    ),
                ]
            e += [Entry(us + ("ln_ffn", "scale"), (f"{hf}{ffn_layer}.layer_norm.weight",), (d,))]
            e += ffn(us, f"{hf}{ffn_layer}.")
        e.append(Entry((stack, "ln_final", "scale"), (f"{stack}.final_layer_norm.weight",), (d,)))
    return e


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


def normalize_key(key: str, is_gpt2: bool) -> str:
    """GPT-2 checkpoints exist with and without the "transformer." prefix (GPT2Model vs LMHead)."""
    if is_gpt2 and not key.startswith(("transformer.", "lm_head.")):
        return "transformer." + key
    return key


# transformers ties these when they are missing from a checkpoint; we do the same.
TIED_FALLBACKS = {"lm_head.weight": "shared.weight"}


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
            elif TIED_FALLBACKS.get(key) in reader.keys:
                resolved[key] = TIED_FALLBACKS[key]
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
