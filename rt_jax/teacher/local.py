"""The open-model teacher of `teacher generate --backend=local`: its flags checked before any weight
is read, then the checkpoint read straight into its shardings on the mesh (rt_jax.models.from_pretrained
with a mesh), so a teacher larger than one device's memory runs.

- `--mesh=data=1,fsdp=2,tensor=4`: the (data, fsdp, tensor) sizes of a training config's `mesh`
  (rt_jax.parallel); an axis left out has size 1 and one size may be -1 (the remaining devices). The
  sizes must use every device. Without --mesh the teacher runs on one device.
- `--dtype=float32|bfloat16`: parameters and compute.
- `--chat_template=auto|on|off`: send the chat API's conversation (rt_jax.teacher.generate) in the
  tokenizer's chat template, as instruct checkpoints expect; auto = on when the tokenizer has one.
"""

from __future__ import annotations

import os
import pathlib

import numpy as np

from rt_jax.errors import UserError

DTYPES = ("float32", "bfloat16")
CHAT_TEMPLATE = ("auto", "on", "off")
_MESH_FORM = "expected data=N,fsdp=N,tensor=N (an axis left out is 1; one size may be -1: the remaining devices)"


def parse_mesh(text: str) -> dict[str, int]:
    """ "data=2,fsdp=2,tensor=2" -> {"data": 2, "fsdp": 2, "tensor": 2}, the form of config.mesh."""
    from rt_jax.parallel import MESH_AXES

    sizes, seen = dict.fromkeys(MESH_AXES, 1), set()
    for piece in text.split(","):
        name, eq, value = (part.strip() for part in piece.partition("="))
        if not eq or name not in MESH_AXES or name in seen:
            raise UserError(f"--mesh={text}: {_MESH_FORM}")
        try:
            sizes[name] = int(value)
        except ValueError:
            raise UserError(f"--mesh={text}: size {value!r} of {name} is not an integer; {_MESH_FORM}") from None
        seen.add(name)
    return sizes


def teacher_mesh(text: str, devices=None):
    """The mesh of --mesh over `devices` (default: all), which it must use up."""
    import jax

    from rt_jax import parallel

    devices = list(jax.devices() if devices is None else devices)
    sizes = parse_mesh(text)
    try:
        shape = parallel.mesh_shape(sizes, len(devices))
    except UserError as e:
        raise UserError(f"--mesh={text}: {e}") from None
    if int(np.prod(shape)) != len(devices):
        raise UserError(
            f"--mesh={text}: {' x '.join(map(str, shape))} = {int(np.prod(shape))} devices; expected sizes "
            f"that multiply to the {len(devices)} devices here (or one size -1)"
        )
    return parallel.make_mesh(sizes, devices)


def _looks_like_path(model: str) -> bool:
    return os.sep in model or model.startswith((".", "~"))


def _chat(model: str, chat_template: str, tokenizer) -> bool:
    from rt_jax.models import chat

    if chat_template not in CHAT_TEMPLATE:
        raise UserError(f"--chat_template={chat_template}: expected one of {', '.join(CHAT_TEMPLATE)}")
    if chat_template == "on" and not chat.has_template(tokenizer):
        raise UserError(f"--chat_template=on: the tokenizer of --model={model} has no chat template; use off or auto")
    return chat_template != "off" and chat.has_template(tokenizer)


def load_teacher(
    model: str | None,
    mesh: str | None = None,
    dtype: str = "float32",
    chat_template: str = "auto",
    batch_size: int = 16,
    devices=None,
):
    """A LocalModelBackend for the checkpoint at `model` (a folder, or a hub name when online); every
    flag is checked before the weights are read."""
    import jax.numpy as jnp

    from rt_jax.models import from_pretrained
    from rt_jax.models.hf import load_tokenizer
    from rt_jax.teacher.backends import LocalModelBackend

    if not model:
        raise UserError("--model: give the checkpoint folder of the teacher (--backend=local)")
    directory = pathlib.Path(model).expanduser()
    if not directory.is_dir() and (_looks_like_path(model) or directory.exists()):
        raise UserError(f"--model={model}: no such model folder (expected config.json and safetensors weights)")
    if dtype not in DTYPES:
        raise UserError(f"--dtype={dtype}: expected one of {', '.join(DTYPES)}")
    on_mesh = None if mesh is None else teacher_mesh(mesh, devices)
    if directory.is_dir():  # the template decided before the weights are read
        _chat(model, chat_template, load_tokenizer(directory))
    loaded = from_pretrained(model, dtype=jnp.dtype(dtype), param_dtype=jnp.dtype(dtype), mesh=on_mesh)
    return LocalModelBackend(loaded, batch_size, on_mesh, _chat(model, chat_template, loaded.tokenizer))
