"""Evaluation of a template's prompts: accuracy equals the scorer's count; predictions are cache
records; one compiled decoder serves every epoch's params."""

import dataclasses

import jax
import jax.numpy as jnp
import pytest
import transformers

from rt_jax import decoding, evaluation, parallel
from rt_jax.decoding import driver
from rt_jax.errors import UserError
from rt_jax.models import ByteTokenizer, from_config, logical_axes
from rt_jax.tasks import load_dataset, load_split, score
from rt_jax.teacher.store import RationaleStore


@pytest.fixture(scope="module")
def multiarith_test_examples(data_dir):
    ds = load_dataset("multiarith", data_dir)
    return ds.select(load_split("multiarith", data_dir).test[:4])


class _ScriptedDecoder:
    """Stands in for rt_jax.decoding.Decoder: returns a fixed completion per prompt."""

    script: dict = {}

    def __init__(self, loaded, config, mesh=None, param_shardings=None):
        self.params = None

    def decode_texts(self, prompts, params=None):
        return [decoding.Decoded(self.script[p], (), "eos") for p in prompts]


def _read_back(store, where, tmp_path):
    """The store's records, downloaded first when `store` is a bucket folder."""
    if where == "local":
        return RationaleStore(store).read("gpt2", "ft_cot.epoch03", "multiarith")
    from etils import epath

    copy = tmp_path / "download" / "gpt2" / "ft_cot.epoch03" / "multiarith.jsonl"
    copy.parent.mkdir(parents=True, exist_ok=True)
    copy.write_bytes(epath.Path(f"{store}/gpt2/ft_cot.epoch03/multiarith.jsonl").read_bytes())
    return RationaleStore(tmp_path / "download").read("gpt2", "ft_cot.epoch03", "multiarith")


@pytest.mark.parametrize("where", ["local", "gs"])
def test_accuracy_is_the_scorers_count_on_a_hand_checked_case(
    multiarith_test_examples, tmp_path, monkeypatch, where, request
):
    monkeypatch.setattr(driver, "Decoder", _ScriptedDecoder)
    monkeypatch.setattr(driver, "_DECODERS", {})  # compiled decoders of other tests stay theirs
    out_dir = tmp_path / "preds"
    if where == "gs":
        request.getfixturevalue("fake_gcs")
        out_dir = "gs://bucket/run/predictions"
    golds = [ex.answer for ex in multiarith_test_examples]
    completions = [
        f"2 + 3 = 5 --> {golds[0]}",  # right after the prefix: correct
        "--> 999",  # wrong
        f"it is {golds[2]} --> 7",  # the number after "-->" counts: wrong
        f"so {golds[3]}",  # no prefix: the last number: correct
    ]
    _ScriptedDecoder.script = {f"{ex.question} ###": c for ex, c in zip(multiarith_test_examples, completions)}
    loaded = type("Fake", (), {"is_encoder_decoder": False})()
    config = decoding.DecodeConfig()
    result = evaluation.evaluate_method(
        loaded, None, "multiarith", multiarith_test_examples, "ft_cot", config, out_dir, 3, model="gpt2"
    )
    assert result["accuracy"] == 50.0 and result["num_test"] == 4 and result["num_correct"] == 2

    records = _read_back(out_dir, where, tmp_path)
    assert f"{out_dir}/gpt2/ft_cot.epoch03/multiarith.jsonl" == result["predictions_path"]
    assert [r.sample_index for r in records] == [ex.sample_index for ex in multiarith_test_examples]
    assert [r.correct for r in records] == [True, False, False, True]
    assert [r.reasoning_completion for r in records] == completions
    assert records[2].prediction == "7"

    # The same epoch again (a resumed run): nothing re-written; different predictions: refused.
    again = evaluation.evaluate_method(
        loaded, None, "multiarith", multiarith_test_examples, "ft_cot", config, out_dir, 3, model="gpt2"
    )
    assert again == result and _read_back(out_dir, where, tmp_path) == records
    _ScriptedDecoder.script = {p: "--> 99999" for p in _ScriptedDecoder.script}
    with pytest.raises(UserError, match="already"):
        evaluation.evaluate_method(
            loaded, None, "multiarith", multiarith_test_examples, "ft_cot", config, out_dir, 3, model="gpt2"
        )
    assert _read_back(out_dir, where, tmp_path) == records  # the refused epoch left the saved one as it was
    assert (
        evaluation.evaluate_method(
            loaded, None, "multiarith", multiarith_test_examples, "ft_cot", config, out_dir, 4, model="gpt2"
        )["accuracy"]
        == 0.0
    )
    with pytest.raises(UserError, match="no examples"):
        evaluation.evaluate_method(loaded, None, "multiarith", [], "ft_cot", config, out_dir, 5)


def _tiny_gpt2():
    hf = transformers.GPT2Config(
        vocab_size=258, n_positions=512, n_embd=32, n_layer=1, n_head=2, eos_token_id=257, bos_token_id=257
    )
    return dataclasses.replace(from_config(hf, seed=0), tokenizer=ByteTokenizer())


def _always_says(params, char):
    """Params whose final layer norm ignores its input and points at `char`'s (tied) embedding."""
    wte = params["wte"]
    ln_f = {"scale": jnp.zeros_like(params["ln_f"]["scale"]), "bias": 50.0 * wte[ord(char)]}
    return {**params, "ln_f": ln_f}


def test_real_decoder_with_swapped_params(multiarith_test_examples, tmp_path):
    """Each call decodes with the params it is given, through one compiled decoder, on a
    (2, 2, 2) mesh with params sharded as in training and a model without params of its own
    (as the training loop hands it over)."""
    full = _tiny_gpt2()
    mesh = parallel.make_mesh({"data": 2, "fsdp": 2, "tensor": 2})
    shardings = parallel.param_shardings(logical_axes(full), full.params, mesh)
    sharded = lambda p: jax.device_put(p, shardings)  # noqa: E731
    loaded = dataclasses.replace(full, params=None)
    config = decoding.DecodeConfig(max_new_tokens=6, batch_size=4)
    sevens = evaluation.evaluate_method(
        loaded,
        sharded(_always_says(full.params, "7")),
        "multiarith",
        multiarith_test_examples,
        "ft_cot",
        config,
        tmp_path,
        0,
        mesh=mesh,
    )
    assert sevens["num_correct"] == 0 and sevens["accuracy"] == 0.0
    records = RationaleStore(tmp_path).read("student", "ft_cot.epoch00", "multiarith")
    assert [(r.reasoning_completion, r.prediction) for r in records] == [("777777", "777777")] * 4
    golds = {ex.sample_index: ex.answer for ex in multiarith_test_examples}
    first_gold = golds[multiarith_test_examples[0].sample_index]
    hit = evaluation.evaluate_method(
        loaded,
        sharded(_always_says(full.params, first_gold[0])),
        "multiarith",
        multiarith_test_examples,
        "ft_cot",
        config,
        tmp_path,
        1,
        mesh=mesh,
    )
    records = RationaleStore(tmp_path).read("student", "ft_cot.epoch01", "multiarith")
    expected = [score("multiarith", first_gold[0] * 6, golds[r.sample_index], "-->").correct for r in records]
    assert [r.correct for r in records] == expected
    assert hit["num_correct"] == sum(expected)
    # both epochs went through one cached decoder, which keeps no reference to their params
    decoder = driver.get_decoder(loaded, config, mesh)
    assert decoder is driver.get_decoder(loaded, config, mesh) and decoder.params is None
    assert sum(entry[0] is loaded for entry in driver._DECODERS.values()) == 1


@pytest.mark.slow
def test_saved_completions_are_what_decoding_produces(multiarith_test_examples, tmp_path):
    loaded = _tiny_gpt2()
    config = decoding.DecodeConfig(max_new_tokens=6, batch_size=4)
    evaluation.evaluate_method(
        loaded, loaded.params, "multiarith", multiarith_test_examples, "ft_cot", config, tmp_path, 0
    )
    expected = decoding.decode_texts(loaded, [f"{ex.question} ###" for ex in multiarith_test_examples], config)
    records = RationaleStore(tmp_path).read("student", "ft_cot.epoch00", "multiarith")
    assert [r.reasoning_completion for r in records] == [d.text for d in expected]
