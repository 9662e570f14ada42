"""Hugging Face checkpoints in and out: from_pretrained, from_config, save_pretrained, logical_axes.

Nothing here knows an architecture: each step asks the model's family (rt_jax.models.family) for
its module, tensor table, tensor-name normalisation and extra config fields."""

import copy
import dataclasses
import json
import os
import pathlib
import pickle
import re
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from rt_jax.errors import UserError
from rt_jax.models import convert, family, registry

CONFIG_FILE = "config.json"
SAFETENSORS_FILE = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
TORCH_FILE = "pytorch_model.bin"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "spiece.model")
# What a hub download fetches: configs, weights (safetensors first) and tokenizer files.
HUB_PATTERNS = ["*.json", "*.safetensors", "*.model", "*.txt", "merges.txt"]
# save_pretrained writes several safetensors files (and an index) past this many bytes.
MAX_SHARD_BYTES = 5 * 2**30


@dataclasses.dataclass
class LoadedModel:
    """A student: the flax module, its plain params, the transformers config and a tokenizer."""

    module: nn.Module
    params: Any
    config: Any
    tokenizer: Any = None

    @property
    def family(self) -> family.Family:
        return family.for_module(self.module)

    @property
    def is_encoder_decoder(self) -> bool:
        return self.family.is_encoder_decoder


def build_module(config, dtype=jnp.float32, param_dtype=jnp.float32, **options) -> nn.Module:
    """The rt_jax module for a transformers config (options: remat; GPT-2 also position_embedding)."""
    return family.for_config(config).build(config, dtype, param_dtype, **options)


def _init_variables(module: nn.Module, rng):
    return module.init(rng, **family.for_module(module).init_inputs())


def _boxed_shapes(module: nn.Module):
    return jax.eval_shape(lambda rng: _init_variables(module, rng), jax.random.PRNGKey(0))["params"]


def _is_box(x) -> bool:
    return isinstance(x, nn.Partitioned)


def param_shapes(module: nn.Module):
    """ShapeDtypeStructs of the params (no memory used)."""
    return nn.unbox(_boxed_shapes(module))


def param_count(module: nn.Module) -> int:
    """Number of parameters, read off the family's tensor table (no tracing, no memory)."""
    return convert.num_params(family.for_module(module).tensor_table(module))


def logical_axes(loaded_or_module):
    """Tree like .params whose leaves are tuples of logical axis names (None = not sharded)."""
    module = getattr(loaded_or_module, "module", loaded_or_module)
    return jax.tree.map(lambda b: tuple(b.names), _boxed_shapes(module), is_leaf=_is_box)


def from_config(
    config, seed: int = 0, dtype=jnp.float32, param_dtype=jnp.float32, tokenizer=None, **options
) -> LoadedModel:
    """A randomly initialised model (tests, benchmarks, the demo)."""
    module = build_module(config, dtype, param_dtype, **options)
    init = jax.jit(lambda rng: nn.unbox(_init_variables(module, rng)["params"]))
    # unsafe_rbg: XLA's own generator compiles ~5x faster than threefry for the many init calls
    # (random init needs no cross-backend reproducibility).
    return LoadedModel(module, init(jax.random.key(seed, impl="unsafe_rbg")), config, tokenizer)


# ------------------------------------------------------------------------------ reading


class _SafetensorsReader:
    """Tensors of one or several (index.json) safetensors files, opened lazily."""

    def __init__(self, files: list[pathlib.Path], source: str):
        from safetensors import safe_open

        self.source = source
        self._handles = {}
        self._where = {}
        for f in files:
            try:
                handle = safe_open(str(f), framework="flax")
            except Exception as e:  # corrupt or truncated file
                raise UserError(f"{f}: not a readable safetensors file ({e})") from None
            self._handles[f] = handle
            for key in handle.keys():
                self._where[key] = f
        self.keys = set(self._where)

    def shape(self, key):
        return tuple(self._handles[self._where[key]].get_slice(key).get_shape())

    def read(self, key, index):
        """The slice `index` of a tensor; only that part of the file is read."""
        return self._handles[self._where[key]].get_slice(key)[index]


class _DictReader:
    def __init__(self, state: dict, source: str):
        self.source, self._state, self.keys = source, state, set(state)

    def shape(self, key):
        return tuple(self._state[key].shape)

    def read(self, key, index):
        return self._state[key][index]


def _load_torch_state(path: pathlib.Path) -> dict:
    try:
        import torch
    except ImportError:
        raise UserError(
            f"{path}: reading pytorch_model.bin needs torch (pip install torch), "
            "or convert the checkpoint to model.safetensors"
        ) from None
    try:
        # weights_only: the unpickler refuses anything but tensors, so no code can run.
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:  # torch's text spans lines: say what it refused, in one
        found = re.search(r"GLOBAL (\S+)", str(e))
        what = f"a {found.group(1)} object" if found else "objects"
        raise UserError(
            f"{path}: refused: it pickles {what} besides tensors, and unpickling that could run code; "
            "convert the checkpoint to model.safetensors from a trusted copy"
        ) from None
    except Exception as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise UserError(f"{path}: cannot be read as a weights-only torch checkpoint ({first})") from None
    return {k: (v.float() if v.dtype == torch.bfloat16 else v).numpy() for k, v in state.items()}


def _open_weights(directory: pathlib.Path):
    if (directory / SAFETENSORS_FILE).is_file():
        return _SafetensorsReader([directory / SAFETENSORS_FILE], str(directory / SAFETENSORS_FILE))
    if (directory / SAFETENSORS_INDEX).is_file():
        index_path = directory / SAFETENSORS_INDEX
        try:
            files = sorted(set(json.loads(index_path.read_text())["weight_map"].values()))
        except (ValueError, KeyError, AttributeError) as e:
            raise UserError(f"{index_path}: expected a JSON object with a weight_map ({e})") from None
        for f in files:
            if not (directory / f).is_file():
                raise UserError(f"{directory / f}: listed in {SAFETENSORS_INDEX} but missing")
        return _SafetensorsReader([directory / f for f in files], str(index_path))
    if (directory / TORCH_FILE).is_file():
        return _DictReader(_load_torch_state(directory / TORCH_FILE), str(directory / TORCH_FILE))
    raise UserError(f"{directory}: no {SAFETENSORS_FILE}, {SAFETENSORS_INDEX} or {TORCH_FILE}")


class _RenamedReader:
    """A reader whose tensor names are the family's normalised ones (Family.normalize_key)."""

    def __init__(self, reader, normalize_key):
        self.source = reader.source
        self._reader = reader
        self._names = {normalize_key(k): k for k in reader.keys}
        self.keys = set(self._names)

    def shape(self, key):
        return self._reader.shape(self._names[key])

    def read(self, key, index):
        return self._reader.read(self._names[key], index)


def _read_config(directory: pathlib.Path):
    from transformers import AutoConfig

    path = directory / CONFIG_FILE
    if not path.is_file():
        raise UserError(f"{path}: missing; a model directory needs a transformers config.json")
    try:
        model_type = json.loads(path.read_text(encoding="utf-8")).get("model_type")
    except (ValueError, AttributeError) as e:
        raise UserError(f"{path}: not a JSON object ({e})") from None
    family.for_model_type(model_type, where=str(path))  # before transformers reads it
    try:
        return AutoConfig.from_pretrained(str(directory))
    except Exception as e:
        raise UserError(f"{path}: transformers cannot read this config ({e})") from None


def load_tokenizer(directory: pathlib.Path):
    """AutoTokenizer when the directory has tokenizer files, rt_jax's ByteTokenizer when it holds
    one, else None."""
    from rt_jax.models import byte_tokenizer

    if byte_tokenizer.is_byte_tokenizer_dir(directory):
        return byte_tokenizer.ByteTokenizer.from_pretrained(directory)
    if not any((directory / f).is_file() for f in TOKENIZER_FILES):
        return None
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(directory))
    except Exception as e:
        raise UserError(f"{directory}: tokenizer files present but unreadable ({e})") from None


def download(name: str) -> pathlib.Path:
    """A hub name (or a paper student's short name) -> local snapshot directory (HF's cache)."""
    if name in registry.STUDENTS:
        name = registry.hub_id(name)
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise UserError(f"{name!r} is not a local directory and huggingface_hub is not installed") from None
    try:
        return pathlib.Path(snapshot_download(repo_id=name, allow_patterns=HUB_PATTERNS))
    except Exception as e:
        raise UserError(
            f"{name!r} is not a local directory and could not be downloaded from the "
            f"Hugging Face hub ({type(e).__name__}: {e})"
        ) from None


def from_pretrained(name_or_path, dtype=jnp.float32, param_dtype=jnp.float32, mesh=None, **options) -> LoadedModel:
    """Loads a student from a transformers checkpoint directory or (when online) a hub name.

    With a `mesh`, every parameter is placed straight into its sharding (rt_jax.parallel rules),
    each device's block read from the (possibly sharded) safetensors files on its own, so no
    host holds an unsharded copy. Either the whole model is returned or a UserError names the
    file or tensor at fault."""
    directory = pathlib.Path(os.fspath(name_or_path)).expanduser()
    if not directory.is_dir():
        if directory.exists() or str(name_or_path).startswith((".", "/", "~")):
            raise UserError(f"{name_or_path}: not a model directory")
        directory = download(str(name_or_path))
    config = _read_config(directory)
    fam = family.for_config(config, where=str(directory / CONFIG_FILE))
    module = fam.build(config, dtype, param_dtype, **options)
    tokenizer = load_tokenizer(directory)
    tokenizer = fam.prepare_tokenizer(tokenizer, directory)  # before any weight is read
    reader = _RenamedReader(_open_weights(directory), fam.normalize_key)
    shapes = {path: leaf.shape for path, leaf in _by_path(param_shapes(module)).items()}
    shardings = None
    if mesh is not None:
        from rt_jax import parallel

        shardings = _by_path(parallel.param_shardings(logical_axes(module), param_shapes(module), mesh))
    cast = lambda block: np.asarray(block).astype(param_dtype)  # noqa: E731
    params = convert.params_from_state(fam.tensor_table(module), reader, shapes, cast, shardings)
    if shardings is None:
        params = jax.tree.map(jnp.asarray, params)
    return LoadedModel(module, params, config, tokenizer)


def _by_path(tree) -> dict:
    """{("h_0", "attn", "qkv_kernel"): leaf} for a nested dict."""
    return {tuple(p.key for p in path): leaf for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


# ------------------------------------------------------------------------------ writing


def save_pretrained(
    loaded: LoadedModel, directory, overwrite: bool = False, max_shard_bytes: int = MAX_SHARD_BYTES
) -> pathlib.Path:
    """Writes config.json, the weights (transformers' names and layouts) and the tokenizer.

    Weights over `max_shard_bytes` go to several model-0000i-of-0000n.safetensors files and a
    model.safetensors.index.json, as transformers writes them; one shard is in host memory at a
    time. Refuses to write into a directory that already holds a checkpoint unless overwrite=True."""
    directory = pathlib.Path(directory)
    if not overwrite and any(
        (directory / f).exists() for f in (CONFIG_FILE, SAFETENSORS_FILE, SAFETENSORS_INDEX, TORCH_FILE)
    ):
        raise UserError(f"{directory}: already holds a checkpoint; choose another directory or pass overwrite=True")
    directory.mkdir(parents=True, exist_ok=True)
    config = copy.deepcopy(loaded.config)
    fam = loaded.family
    for name, value in fam.extra_config_fields(loaded.module).items():
        setattr(config, name, value)
    _write_weights(directory, fam.tensor_table(loaded.module), loaded.params, max_shard_bytes)
    config.save_pretrained(str(directory))
    if loaded.tokenizer is not None:
        loaded.tokenizer.save_pretrained(str(directory))
    return directory


def _shard_plan(table, params, max_shard_bytes: int) -> list[int]:
    """Shard number of each tensor, in table order: a new shard when the next tensor would
    overflow the current one (a tensor bigger than the limit gets a shard of its own)."""
    plan, shard, used = [], 0, 0
    for entry in table:
        node = params
        for name in entry.path:
            node = node[name]
        itemsize = 4 if node.dtype == jnp.bfloat16 else np.dtype(node.dtype).itemsize
        for _ in entry.all_keys():
            size = int(np.prod(entry.hf_shape)) * itemsize
            if used and used + size > max_shard_bytes:
                shard, used = shard + 1, 0
            plan.append(shard)
            used += size
    return plan


def _write_weights(directory: pathlib.Path, table, params, max_shard_bytes: int) -> None:
    from safetensors.numpy import save_file

    plan = _shard_plan(table, params, max_shard_bytes)
    n = plan[-1] + 1
    names = [SAFETENSORS_FILE] if n == 1 else [f"model-{i + 1:05d}-of-{n:05d}.safetensors" for i in range(n)]
    weight_map, total, shard, current = {}, 0, 0, {}

    def flush():
        tmp = directory / (names[shard] + ".tmp")
        save_file(current, str(tmp), metadata={"format": "pt"})
        os.replace(tmp, directory / names[shard])

    for (key, tensor), target in zip(convert.hf_tensors(table, params), plan):
        if target != shard:
            flush()
            shard, current = target, {}
        current[key] = np.ascontiguousarray(_to_numpy(tensor))
        weight_map[key] = names[target]
        total += current[key].nbytes
    flush()
    stale = [SAFETENSORS_INDEX] if n == 1 else [SAFETENSORS_FILE]
    if n > 1:
        index = {"metadata": {"total_size": total}, "weight_map": weight_map}
        (directory / (SAFETENSORS_INDEX + ".tmp")).write_text(json.dumps(index, indent=2))
        os.replace(directory / (SAFETENSORS_INDEX + ".tmp"), directory / SAFETENSORS_INDEX)
    for name in stale:  # an overwritten checkpoint of the other layout would shadow this one
        (directory / name).unlink(missing_ok=True)


def _to_numpy(x):
    x = np.asarray(jax.device_get(x))
    # safetensors' numpy writer has no bfloat16: widen (transformers narrows back via torch_dtype).
    return x.astype(np.float32) if x.dtype == jnp.bfloat16 else x
