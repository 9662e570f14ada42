"""Checkpoint IO: transformers loads what rt_jax saves, round trips are exact, bad input is one UserError."""

import json
from unittest import mock

import jax
import numpy as np
import pytest
import torch
from model_refs import GPT2_SMALL, T5_SMALL, left_padded_batch, right_padded_batch, save_state_dict, torch_logits
from safetensors.numpy import load_file, save_file
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSeq2SeqLM,
    GPT2Config,
    GPT2LMHeadModel,
    T5Config,
    T5ForConditionalGeneration,
)

from rt_jax import models
from rt_jax.errors import UserError
from rt_jax.models import ByteTokenizer


@pytest.fixture(scope="module")
def gpt2_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("gpt2")
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(**GPT2_SMALL)).save_pretrained(directory)
    return directory


def _same_params(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_gpt2_saved_by_rt_jax_loads_in_transformers_with_same_logits(gpt2_dir, tmp_path):
    loaded = models.from_pretrained(gpt2_dir)
    models.save_pretrained(loaded, tmp_path / "out")
    back = AutoModelForCausalLM.from_pretrained(tmp_path / "out").eval()
    ids, mask = left_padded_batch(np.random.default_rng(0), (5, 3), 40)
    want = torch_logits(
        back, input_ids=ids.astype(np.int64), attention_mask=mask, position_ids=np.maximum(np.cumsum(mask, -1) - 1, 0)
    )
    got = np.asarray(jax.jit(loaded.module.apply)({"params": loaded.params}, ids, mask))
    assert np.abs(got - want)[mask.astype(bool)].max() <= 1e-4
    _same_params(models.from_pretrained(tmp_path / "out").params, loaded.params)


# v1.1 (separate head) is the case that can go wrong; v1.0 runs with the slow tests.
@pytest.mark.parametrize("v11", [pytest.param(False, marks=pytest.mark.slow), True], ids=["v1.0", "v1.1"])
def test_t5_saved_by_rt_jax_loads_in_transformers_with_same_logits(tmp_path, v11):
    config = T5Config(feed_forward_proj="gated-gelu" if v11 else "relu", tie_word_embeddings=not v11, **T5_SMALL)
    torch.manual_seed(5)
    source = T5ForConditionalGeneration(config)
    if v11:  # a separate head, as in real Flan-T5 checkpoints (transformers 5 ties it at init)
        source.lm_head.weight = torch.nn.Parameter(torch.randn_like(source.lm_head.weight))
    save_state_dict(source, config, tmp_path / "source")
    loaded = models.from_pretrained(tmp_path / "source")
    models.save_pretrained(loaded, tmp_path / "out")
    back = AutoModelForSeq2SeqLM.from_pretrained(tmp_path / "out").eval()
    rng = np.random.default_rng(1)
    ids, mask = right_padded_batch(rng, (6, 2), 40)
    dec, dec_mask = right_padded_batch(rng, (3, 4), 40)
    want = torch_logits(
        back,
        input_ids=ids.astype(np.int64),
        attention_mask=mask,
        decoder_input_ids=dec.astype(np.int64),
        decoder_attention_mask=dec_mask,
    )
    got = np.asarray(jax.jit(loaded.module.apply)({"params": loaded.params}, ids, mask, dec, dec_mask))
    assert np.abs(got - want)[dec_mask.astype(bool)].max() <= 1e-4
    _same_params(models.from_pretrained(tmp_path / "out").params, loaded.params)


def test_rotary_gpt2_and_byte_tokenizer_round_trip(tmp_path):
    loaded = models.from_config(
        GPT2Config(**dict(GPT2_SMALL, vocab_size=258)), position_embedding="rotary", tokenizer=ByteTokenizer()
    )
    models.save_pretrained(loaded, tmp_path)
    again = models.from_pretrained(tmp_path)
    assert again.module.s.position_embedding == "rotary"
    assert isinstance(again.tokenizer, ByteTokenizer)
    _same_params(again.params, loaded.params)


def test_pytorch_bin_is_read_weights_only(gpt2_dir, tmp_path):
    # Named as in the original GPT-2 .bin files: "h.0.attn...", no "transformer." prefix.
    state = load_file(gpt2_dir / "model.safetensors")
    torch.save(
        {k.removeprefix("transformer."): torch.from_numpy(v) for k, v in state.items()}, tmp_path / "pytorch_model.bin"
    )
    (tmp_path / "config.json").write_text((gpt2_dir / "config.json").read_text())
    with mock.patch("torch.load", wraps=torch.load) as load:
        from_bin = models.from_pretrained(tmp_path)
    assert load.call_args.kwargs["weights_only"] is True
    _same_params(from_bin.params, models.from_pretrained(gpt2_dir).params)


def test_gpt2_tokenizer_files_give_an_auto_tokenizer(gpt2_dir, tmp_path):
    import shutil

    for f in ("config.json", "model.safetensors"):
        shutil.copy(gpt2_dir / f, tmp_path / f)
    vocab = {"a": 0, "b": 1, "ab": 2, "<|endoftext|>": 3}
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    (tmp_path / "merges.txt").write_text("#version: 0.2\na b\n")
    loaded = models.from_pretrained(tmp_path)
    assert loaded.tokenizer.encode("abab") == [2, 2]
    models.save_pretrained(loaded, tmp_path / "out")
    assert models.from_pretrained(tmp_path / "out").tokenizer.encode("aab") == [0, 2]


def test_hub_names_go_through_snapshot_download(gpt2_dir):
    with mock.patch("huggingface_hub.snapshot_download", return_value=str(gpt2_dir)) as download:
        loaded = models.from_pretrained("someone/gpt2-student")
        assert download.call_args.kwargs["repo_id"] == "someone/gpt2-student"
        assert "*.safetensors" in download.call_args.kwargs["allow_patterns"]
        assert loaded.module.s.n_layer == 2
        models.from_pretrained("gpt2-medium")  # paper names map to hub ids
        assert download.call_args.kwargs["repo_id"] == "openai-community/gpt2-medium"


def test_hub_failure_is_one_user_error():
    with mock.patch("huggingface_hub.snapshot_download", side_effect=OSError("offline")):
        with pytest.raises(UserError, match="could not be downloaded.*offline"):
            models.from_pretrained("someone/missing-model")


# ---------------------------------------------------------------------------- bad input


def _copy_with(gpt2_dir, tmp_path, config=None, state=None):
    config_json = json.loads((gpt2_dir / "config.json").read_text())
    state_dict = load_file(gpt2_dir / "model.safetensors")
    if config:
        config_json.update(config)
    if state:
        state(state_dict)
    (tmp_path / "config.json").write_text(json.dumps(config_json))
    save_file(state_dict, tmp_path / "model.safetensors")
    return tmp_path


def test_directory_without_config(gpt2_dir, tmp_path):
    (tmp_path / "model.safetensors").write_bytes((gpt2_dir / "model.safetensors").read_bytes())
    with pytest.raises(UserError, match="config.json: missing"):
        models.from_pretrained(tmp_path)


def test_unsupported_architecture(gpt2_dir, tmp_path):
    with pytest.raises(UserError, match="model_type 'bert' is not supported"):
        models.from_pretrained(_copy_with(gpt2_dir, tmp_path, config={"model_type": "bert"}))


def test_missing_tensor_is_named(gpt2_dir, tmp_path):
    def drop(state):
        del state[next(k for k in state if k.endswith("h.1.mlp.c_fc.weight"))]

    with pytest.raises(UserError, match=r"tensor 'transformer.h.1.mlp.c_fc.weight' is missing"):
        models.from_pretrained(_copy_with(gpt2_dir, tmp_path, state=drop))


def test_misshaped_tensor_is_named(gpt2_dir, tmp_path):
    def shrink(state):
        key = next(k for k in state if k.endswith("h.0.attn.c_attn.weight"))
        state[key] = state[key][:, :-1].copy()

    with pytest.raises(UserError, match=r"tensor 'transformer.h.0.attn.c_attn.weight' has shape \(16, 47\)"):
        models.from_pretrained(_copy_with(gpt2_dir, tmp_path, state=shrink))


def test_no_weights_and_not_a_directory(gpt2_dir, tmp_path):
    (tmp_path / "config.json").write_text((gpt2_dir / "config.json").read_text())
    with pytest.raises(UserError, match="no model.safetensors"):
        models.from_pretrained(tmp_path)
    with pytest.raises(UserError, match="not a model directory"):
        models.from_pretrained(tmp_path / "config.json")


def test_save_never_overwrites_a_checkpoint(gpt2_dir):
    loaded = models.from_pretrained(gpt2_dir)
    before = (gpt2_dir / "model.safetensors").read_bytes()
    with pytest.raises(UserError, match="already holds a checkpoint"):
        models.save_pretrained(loaded, gpt2_dir)
    assert (gpt2_dir / "model.safetensors").read_bytes() == before


def test_sharded_safetensors_checkpoint(gpt2_dir, tmp_path):
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(**GPT2_SMALL)).save_pretrained(tmp_path, max_shard_size="20KB")
    assert (tmp_path / "model.safetensors.index.json").is_file()
    _same_params(models.from_pretrained(tmp_path).params, models.from_pretrained(gpt2_dir).params)


class _RunsCode:
    def __reduce__(self):
        return (print, ("this ran",))


def test_a_pickled_bin_is_refused_in_one_line(gpt2_dir, tmp_path, capsys):
    torch.save({"wte.weight": torch.zeros(2), "payload": _RunsCode()}, tmp_path / "pytorch_model.bin")
    (tmp_path / "config.json").write_text((gpt2_dir / "config.json").read_text())
    with pytest.raises(UserError) as err:
        models.from_pretrained(tmp_path)
    assert str(err.value) == (
        f"{tmp_path / 'pytorch_model.bin'}: refused: it pickles a print object besides tensors, "
        "and unpickling that could run code; convert the checkpoint to model.safetensors from a trusted copy"
    )
    assert "this ran" not in capsys.readouterr().out
