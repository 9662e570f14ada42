"""The model-family registry: unknown model_types are one error everywhere, a family registered
from outside rt_jax works through hf.py unchanged, and the declarations agree with the modules."""

import dataclasses
import importlib
import json
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import transformers
from model_refs import GPT2_SMALL, T5_SMALL
from safetensors.numpy import load_file, save_file

from rt_jax import models
from rt_jax.decoding.adapters import adapter_for
from rt_jax.errors import UserError
from rt_jax.models import family, gpt2, registry, t5
from rt_jax.models.convert import Entry
from rt_jax.models.layers import annotated_param
from rt_jax.train import metrics

UNSUPPORTED = "model_type 'bert' is not supported; expected one of gpt2, llama, qwen2, mistral, qwen3, t5"


# ------------------------------------------------------------------------------ unknown model_type


def _bert_dir(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "hidden_size": 8}))
    return tmp_path


def test_unknown_model_type_is_the_same_error_on_every_path(tmp_path, monkeypatch):
    bert = transformers.BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8)
    monkeypatch.setitem(registry.STUDENTS, "bert-tiny", registry.Student("x/bert", 1, "bert", {}))
    calls = [
        (str(tmp_path / "config.json"), lambda: models.from_pretrained(_bert_dir(tmp_path))),
        ("config", lambda: models.from_config(bert)),
        ("config", lambda: models.build_module(bert)),
        ("student 'bert-tiny'", lambda: models.student_config("bert-tiny")),
        ("config", lambda: metrics.flops_per_token(bert, 1000, 16)),
    ]
    for where, call in calls:
        with pytest.raises(UserError) as e:
            call()
        assert str(e.value) == f"{where}: {UNSUPPORTED}"


def test_every_student_names_a_registered_model_type():
    assert {s.model_type for s in registry.STUDENTS.values()} <= set(family.supported_model_types())


def test_registering_a_taken_name_or_model_type_is_refused():
    with pytest.raises(ValueError, match="clashes with registered family 'gpt2'"):
        family.register(dataclasses.replace(gpt2.FAMILY, name="gpt2-again"))
    with pytest.raises(ValueError, match="clashes"):
        family.register(dataclasses.replace(t5.FAMILY, model_types=("mt5",)))  # same name
    with pytest.raises(ValueError, match="not the module of a registered family"):
        family.for_module(nn.Dense(3))


def test_tokenizer_policy_padding_side_is_checked():
    with pytest.raises(ValueError, match="prompt_padding='middle'"):
        family.TokenizerPolicy(add_bos=False, append_eos=True, prompt_padding="middle")


# ------------------------------------------------------------------------------ a plug-in family


class ToyConfig(transformers.PreTrainedConfig):
    model_type = "rt_jax_toy"
    vocab_size: int = 13
    width: int = 6
    scale: float = 1.0  # saved as an extra config field when not 1 (like GPT-2's rotary flag)


class ToyLM(nn.Module):
    """Embedding, one tanh mixing matrix, tied output head."""

    vocab_size: int
    width: int
    scale: float = 1.0

    @nn.compact
    def __call__(self, input_ids, attention_mask=None, deterministic=True):
        init = nn.initializers.normal(1.0)
        embed = annotated_param(self, "embed", init, (self.vocab_size, self.width), ("vocab", "embed"), jnp.float32)
        mix = annotated_param(self, "mix", init, (self.width, 2 * self.width), ("embed", "mlp"), jnp.float32)
        h = jnp.tanh(jnp.take(embed, input_ids, axis=0) @ mix) * self.scale
        return h[..., : self.width] @ embed.T


def _toy_table(module):
    v, w = module.vocab_size, module.width
    return [
        Entry(("embed",), ("toy.embed.weight",), (v, w)),
        Entry(("mix",), ("toy.mix.weight",), (2 * w, w), "linear"),  # stored [out, in] like nn.Linear
    ]


TOY = family.Family(
    name="toy",
    model_types=("rt_jax_toy",),
    is_encoder_decoder=False,
    module_class=ToyLM,
    build=lambda config, dtype, param_dtype, scale=None: ToyLM(config.vocab_size, config.width, scale or config.scale),
    tensor_table=_toy_table,
    flops_per_token=lambda config, n, seq_len: family.dense_flops_per_token(n, 1, config.width, seq_len),
    tokenizer=family.TokenizerPolicy(add_bos=True, append_eos=True, prompt_padding="left"),
    init_inputs=lambda: {"input_ids": jnp.zeros((1, 1), jnp.int32)},
    normalize_key=lambda key: key.removeprefix("model."),
    extra_config_fields=lambda module: {} if module.scale == 1.0 else {"scale": module.scale},
)


@pytest.fixture
def toy(monkeypatch):
    """TOY registered for one test: rt_jax's registry, transformers' AutoConfig and namespace."""
    monkeypatch.setattr(family, "FAMILIES", dict(family.FAMILIES))
    family.register(TOY)
    # the transformers module now in sys.modules: transformers may have re-imported itself since
    # this file imported it
    current = importlib.import_module("transformers")
    current.AutoConfig.register(ToyConfig.model_type, ToyConfig, exist_ok=True)
    monkeypatch.setattr(current, "ToyConfig", ToyConfig, raising=False)
    return TOY


def test_a_family_registered_outside_rt_jax_builds_saves_and_loads(toy, tmp_path):
    loaded = models.from_config(ToyConfig(), seed=3, scale=0.5)
    assert loaded.family is toy and not loaded.is_encoder_decoder
    assert models.param_count(loaded.module) == 13 * 6 + 6 * 12
    assert models.logical_axes(loaded) == {"embed": ("vocab", "embed"), "mix": ("embed", "mlp")}

    models.save_pretrained(loaded, tmp_path / "saved")
    state = load_file(tmp_path / "saved" / "model.safetensors")
    assert set(state) == {"toy.embed.weight", "toy.mix.weight"}
    np.testing.assert_array_equal(state["toy.mix.weight"], np.asarray(loaded.params["mix"]).T)
    assert json.loads((tmp_path / "saved" / "config.json").read_text())["scale"] == 0.5

    # a checkpoint naming its tensors differently is read through the family's normalize_key
    save_file({f"model.{k}": v for k, v in state.items()}, str(tmp_path / "saved" / "model.safetensors"))
    back = models.from_pretrained(tmp_path / "saved")
    assert back.family is toy and back.module.scale == 0.5
    for name in ("embed", "mix"):
        np.testing.assert_array_equal(np.asarray(back.params[name]), np.asarray(loaded.params[name]))
    ids = jnp.array([[1, 2, 3]])
    want = loaded.module.apply({"params": loaded.params}, ids)
    np.testing.assert_allclose(back.module.apply({"params": back.params}, ids), want, rtol=1e-6)

    # the family's other declarations are what every consumer gets
    assert metrics.flops_per_token(back.config, 100, 4) == 6 * 100 + 12 * 1 * 6 * 4
    assert adapter_for(back, 4).pad_side == "left"


def test_a_student_of_a_plug_in_family_is_data_only(toy, monkeypatch):
    monkeypatch.setitem(
        registry.STUDENTS, "toy-small", registry.Student("x/toy-small", 13 * 4 + 4 * 8, "rt_jax_toy", {"width": 4})
    )
    config = models.student_config("toy-small")
    assert isinstance(config, ToyConfig) and config.width == 4
    assert models.param_count(models.build_module(config)) == registry.STUDENTS["toy-small"].num_params


def test_a_decoder_only_family_cannot_declare_right_padded_prompts(toy):
    loaded = models.from_config(ToyConfig(), seed=0)
    family.FAMILIES["toy"] = dataclasses.replace(
        toy, tokenizer=dataclasses.replace(toy.tokenizer, prompt_padding="right")
    )
    with pytest.raises(ValueError, match="left-padded"):
        adapter_for(loaded, 4)


# ------------------------------------------------------------------------------ declarations vs modules

LLAMA_SMALL = dict(
    vocab_size=40,
    hidden_size=16,
    intermediate_size=24,
    num_hidden_layers=3,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=6,
)
# Small configs of every built-in family (a new family adds its own: the test below checks).
SMALL = {
    "gpt2": [
        (transformers.GPT2Config(**GPT2_SMALL), {}),
        (transformers.GPT2Config(**GPT2_SMALL, n_inner=24), {"position_embedding": "rotary"}),
    ],
    "t5": [
        (transformers.T5Config(**T5_SMALL), {}),  # v1.0: ReLU, tied head; 1 encoder + 2 decoder layers
        (transformers.T5Config(**T5_SMALL, feed_forward_proj="gated-gelu", tie_word_embeddings=False), {}),
    ],
    "llama": [  # every model_type; biases, an untied head, Qwen3's head norms, GQA
        (transformers.LlamaConfig(**LLAMA_SMALL, attention_bias=True, mlp_bias=True, tie_word_embeddings=False), {}),
        (transformers.Qwen2Config(**LLAMA_SMALL, tie_word_embeddings=True), {"remat": True}),
        (transformers.MistralConfig(**LLAMA_SMALL, sliding_window=4), {}),
        (transformers.Qwen3Config(**LLAMA_SMALL, attention_bias=True), {}),
    ],
}


def test_every_family_has_small_configs_here():
    assert set(SMALL) == set(family.FAMILIES)


@pytest.mark.parametrize("name,index", [(n, i) for n, cases in SMALL.items() for i in range(len(cases))])
def test_tensor_table_count_equals_the_modules_parameters(name, index):
    config, options = SMALL[name][index]
    module = models.build_module(config, **options)
    assert family.for_module(module) is family.FAMILIES[name]
    shapes = jax.tree.leaves(models.param_shapes(module))
    assert models.param_count(module) == sum(math.prod(x.shape) for x in shapes)
    # every parameter is filled by exactly one table entry, with its shape's size
    table = family.FAMILIES[name].tensor_table(module)
    flat = {
        tuple(k.key for k in path): leaf.shape
        for path, leaf in jax.tree_util.tree_flatten_with_path(models.param_shapes(module))[0]
    }
    assert sorted(e.path for e in table) == sorted(flat)
    for e in table:
        assert math.prod(flat[e.path]) == math.prod(e.hf_shape) * len(e.all_keys())


def test_flops_per_token_counts_every_attention_stack():
    gpt2_config, _ = SMALL["gpt2"][0]
    t5_config, _ = SMALL["t5"][0]
    assert metrics.flops_per_token(gpt2_config, 1000, 8) == 6 * 1000 + 12 * 2 * 16 * 8
    assert metrics.flops_per_token(t5_config, 1000, 8) == 6 * 1000 + 12 * 3 * 16 * 8


def test_decoding_pads_prompts_on_the_familys_side():
    for name, side in (("gpt2", "left"), ("t5", "right")):
        config, options = SMALL[name][0]
        loaded = models.LoadedModel(models.build_module(config, **options), None, config)
        assert loaded.family.tokenizer.prompt_padding == side
        assert adapter_for(loaded, 4).pad_side == side
