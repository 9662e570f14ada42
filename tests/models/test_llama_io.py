"""Llama-family checkpoints: per-layer HF tensors <-> stacked params, sharded safetensors read
straight into a mesh's shardings, sharded saving that transformers loads, bad input."""

import json
from unittest import mock

import jax
import numpy as np
import pytest
import torch
from model_refs import left_padded_batch, perturb, torch_logits
from safetensors.numpy import load_file, save_file
from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

from rt_jax import models, parallel
from rt_jax.errors import UserError
from rt_jax.models import hf

SMALL = dict(
    vocab_size=96,
    hidden_size=32,
    intermediate_size=48,
    num_hidden_layers=3,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=64,
    bos_token_id=1,
    eos_token_id=2,
)


def _reference(config, seed=0):
    torch.manual_seed(seed)
    return perturb(AutoModelForCausalLM.from_config(config), seed=seed).eval()


@pytest.fixture(scope="module")
def sharded_dir(tmp_path_factory):
    """An untied Llama saved by transformers in several safetensors files plus an index."""
    directory = tmp_path_factory.mktemp("llama_sharded")
    _reference(LlamaConfig(**SMALL, tie_word_embeddings=False)).save_pretrained(directory, max_shard_size="40KB")
    assert len(json.loads((directory / hf.SAFETENSORS_INDEX).read_text())["weight_map"]) == 3 + 9 * 3
    return directory


def _same_params(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("config", [LlamaConfig(**SMALL), Qwen2Config(**SMALL, tie_word_embeddings=True)])
def test_saved_sharded_checkpoint_loads_in_transformers_with_same_logits(tmp_path, config):
    _reference(config).save_pretrained(tmp_path / "source")
    loaded = models.from_pretrained(tmp_path / "source")
    models.save_pretrained(loaded, tmp_path / "out", max_shard_bytes=30_000)
    index = json.loads((tmp_path / "out" / hf.SAFETENSORS_INDEX).read_text())
    files = sorted(set(index["weight_map"].values()))
    assert len(files) > 2 and not (tmp_path / "out" / hf.SAFETENSORS_FILE).exists()
    assert all((tmp_path / "out" / f).stat().st_size <= 30_000 + 4096 for f in files)  # + the file's header
    assert "model.layers.2.self_attn.k_proj.weight" in index["weight_map"]
    assert ("lm_head.weight" in index["weight_map"]) == (not config.tie_word_embeddings)
    back = AutoModelForCausalLM.from_pretrained(tmp_path / "out").eval()
    ids, mask = left_padded_batch(np.random.default_rng(0), (7, 3), SMALL["vocab_size"])
    positions = np.maximum(np.cumsum(mask, -1) - 1, 0)
    want = torch_logits(back, input_ids=ids.astype(np.int64), attention_mask=mask, position_ids=positions)
    got = np.asarray(jax.jit(loaded.module.apply)({"params": loaded.params}, ids, mask))
    assert np.abs(got - want)[mask.astype(bool)].max() <= 1e-4
    _same_params(models.from_pretrained(tmp_path / "out").params, loaded.params)
    # the default limit writes one file, and overwriting drops the index that would shadow it
    models.save_pretrained(loaded, tmp_path / "out", overwrite=True)
    assert (tmp_path / "out" / hf.SAFETENSORS_FILE).exists() and not (tmp_path / "out" / hf.SAFETENSORS_INDEX).exists()
    _same_params(models.from_pretrained(tmp_path / "out").params, loaded.params)


def test_sharded_checkpoint_loads_straight_into_the_mesh_reading_only_each_devices_block(sharded_dir, tmp_path):
    whole = models.from_pretrained(sharded_dir)
    mesh = parallel.make_mesh({"data": 2, "fsdp": 2, "tensor": 2})
    reads = []
    real_read = hf._SafetensorsReader.read

    def counting_read(self, key, index):
        block = real_read(self, key, index)
        reads.append((key, block.size, int(np.prod(self.shape(key)))))
        return block

    with (
        mock.patch.object(hf._SafetensorsReader, "read", counting_read),
        mock.patch("safetensors.safe_open", wraps=__import__("safetensors").safe_open) as opened,
    ):
        placed = models.from_pretrained(sharded_dir, mesh=mesh)
    want = parallel.param_shardings(models.logical_axes(placed), whole.params, mesh)
    for leaf, sharding in zip(jax.tree.leaves(placed.params), jax.tree.leaves(want)):
        assert leaf.sharding == sharding
    assert want["layers"]["attn"]["q_kernel"].spec[1:3] == ("fsdp", "tensor")
    _same_params(placed.params, whole.params)
    assert len(opened.call_args_list) == len(
        set(json.loads((sharded_dir / hf.SAFETENSORS_INDEX).read_text())["weight_map"].values())
    )
    # every layer tensor the mesh splits four ways (embed over fsdp, heads or mlp over tensor)
    # is only ever read a quarter at a time: no host-side copy of a whole stacked tensor
    for key, size, total in reads:
        if any(k in key for k in ("q_proj", "k_proj", "o_proj", "gate_proj", "up_proj", "down_proj")):
            assert size == total // 4, key
    assert {key for key, _, _ in reads} == set(
        json.loads((sharded_dir / hf.SAFETENSORS_INDEX).read_text())["weight_map"]
    )
    # and a model spread over the mesh saves (one layer at a time) to the same checkpoint
    models.save_pretrained(placed, tmp_path / "again", max_shard_bytes=40_000)
    _same_params(models.from_pretrained(tmp_path / "again").params, whole.params)


# ---------------------------------------------------------------------------- bad input


def _copy(sharded_dir, tmp_path, config=None, edit=None):
    """The sharded checkpoint with config fields changed and/or one shard's tensors edited."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    index = json.loads((sharded_dir / hf.SAFETENSORS_INDEX).read_text())
    for name in set(index["weight_map"].values()):
        state = load_file(sharded_dir / name)
        if edit:
            edit(state)
        save_file(state, tmp_path / name, metadata={"format": "pt"})
    (tmp_path / hf.SAFETENSORS_INDEX).write_text(json.dumps(index))
    fields = json.loads((sharded_dir / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**fields, **(config or {})}))
    return tmp_path


def test_missing_shard_names_the_file(sharded_dir, tmp_path):
    directory = _copy(sharded_dir, tmp_path)
    shard = sorted(set(json.loads((directory / hf.SAFETENSORS_INDEX).read_text())["weight_map"].values()))[1]
    (directory / shard).unlink()
    with pytest.raises(UserError, match=f"{shard}: listed in model.safetensors.index.json but missing"):
        models.from_pretrained(directory)


def test_misshaped_and_missing_layer_tensors_are_named(sharded_dir, tmp_path):
    def shrink(state):
        key = "model.layers.1.self_attn.k_proj.weight"
        if key in state:
            state[key] = state[key][:-1].copy()

    with pytest.raises(
        UserError, match=r"'model.layers.1.self_attn.k_proj.weight' has shape \(15, 32\), expected \(16, 32\)"
    ):
        models.from_pretrained(
            _copy(sharded_dir, tmp_path / "a", edit=shrink),
            mesh=parallel.make_mesh({"data": 1, "fsdp": 2, "tensor": 2}),
        )

    def drop(state):
        state.pop("model.layers.2.mlp.up_proj.weight", None)

    with pytest.raises(UserError, match=r"tensor 'model.layers.2.mlp.up_proj.weight' is missing"):
        models.from_pretrained(_copy(sharded_dir, tmp_path / "b", edit=drop))


@pytest.mark.parametrize(
    "fields,message",
    [
        ({"model_type": "gemma"}, r"config.json: model_type 'gemma' is not supported; expected one of .*llama, qwen2"),
        ({"rope_scaling": {"rope_type": "yarn", "factor": 4.0}}, r"rope_type='yarn' is not supported"),
    ],
)
def test_unsupported_config_is_one_line(sharded_dir, tmp_path, fields, message):
    with pytest.raises(UserError, match=message) as error:
        models.from_pretrained(_copy(sharded_dir, tmp_path, config=fields))
    assert "\n" not in str(error.value)
