"""python -m rt_jax.evaluate (rt_jax.evaluation.run_evaluation): prompting baselines and
self-consistency on tiny students, the accuracy re-derived from the saved predictions with the
real dataset's gold answers."""

import json

import pytest

from rt_jax import evaluation, formats, methods
from rt_jax.configs import paper
from rt_jax.errors import UserError
from rt_jax.tasks import load_dataset, load_split, score, task_info
from rt_jax.teacher.store import RationaleStore


def paper_config(arg, model_dir, data_dir):
    c = paper.get_config(arg)
    c.model_path, c.data_dir = str(model_dir), str(data_dir)
    c.eval.batch_size = 4
    return c


def saved_records(workdir, student, method):
    store = RationaleStore(workdir / "predictions")
    (shard,) = [s for s in store.shards() if s[0] == student and s[1].startswith(method + ".epoch")]
    return store.read(*shard)


@pytest.mark.slow  # 10-30 s each on the shared machine; test_self_consistency runs zs by default
@pytest.mark.parametrize("method,model", [("zs", "gpt2"), ("zs", "t5"), ("zs_cot", "gpt2"), ("fs_cot", "gpt2")])
def test_prompting_methods(method, model, request, data_dir, tmp_path):
    model_dir = request.getfixturevalue(f"tiny_{model}_dir")
    config = paper_config(f"multiarith,{method},gpt2", model_dir, data_dir)
    result = evaluation.run_evaluation(config, tmp_path / "run", limit=3)
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved == result
    assert (saved["task"], saved["method"], saved["teacher"]) == ("multiarith", method, None)
    assert saved["best"] == {"epoch": 0, "accuracy": saved["epochs"][0]["accuracy"]} and saved["final"] == saved["best"]

    dataset = load_dataset("multiarith", data_dir)
    test = load_split("multiarith", data_dir).test[:3]
    records = saved_records(tmp_path / "run", "gpt2", method)
    assert [r.sample_index for r in records] == test
    correct = 0
    for rec in records:
        question = dataset[rec.sample_index].question
        if method == "zs_cot":  # Kojima's step 2: step 1's prompt and completion, then the trigger
            assert rec.reasoning_prompt.startswith(f"Q: {question}\nA: Let's think step by step.")
            assert rec.reasoning_prompt.endswith(task_info("multiarith").trigger)
        elif method == "fs_cot":
            assert (
                rec.reasoning_prompt
                == formats.fs_cot_exemplars("multiarith", data_dir) + f"\nQ: {question.strip()}\nA:"
            )
        else:
            assert question.strip() in rec.reasoning_prompt
        s = score(
            "multiarith",
            rec.reasoning_completion,
            dataset[rec.sample_index].answer,
            answer_prefix=formats.answer_prefix(methods.template(method)) if method != "zs_cot" else None,
        )
        assert rec.correct == s.correct
        correct += s.correct
    assert saved["final"]["accuracy"] == pytest.approx(100.0 * correct / 3)


def test_self_consistency(tiny_gpt2_dir, data_dir, tmp_path):
    config = paper_config("multiarith,zs,gpt2", tiny_gpt2_dir, data_dir)
    result = evaluation.run_evaluation(config, tmp_path / "run", num_samples=5, limit=3)
    assert result["method"] == "zs-sc5" and result["self_consistency"]["num_samples"] == 5
    assert (tmp_path / "run" / "results_sc5.json").is_file()
    records = saved_records(tmp_path / "run", "gpt2", "zs-sc5")
    assert len(records) == 15
    dataset = load_dataset("multiarith", data_dir)
    by_sample = {}
    for rec in records:
        by_sample.setdefault(rec.sample_index, []).append(rec)
    majority_correct = 0
    for index, recs in by_sample.items():
        predictions = [r.prediction for r in recs if r.prediction is not None]
        if predictions:
            top = max(predictions.count(p) for p in predictions)
            vote = next(p for p in predictions if predictions.count(p) == top)
            majority_correct += score("multiarith", f"{vote}", dataset[index].answer).correct
    assert result["final"]["accuracy"] == pytest.approx(100.0 * majority_correct / 3)
    samples = sum(r.correct for r in records)
    assert result["self_consistency"]["sample_accuracy"] == pytest.approx(100.0 * samples / 15)
    # sampling at temperature 1 from a random model: the samples differ
    assert len({r.reasoning_completion for r in records}) > 3


def test_self_consistency_refuses_zs_cot(tiny_gpt2_dir, data_dir, tmp_path):
    with pytest.raises(UserError, match="zs_cot answers in two steps"):
        evaluation.self_consistency(
            None, None, paper_config("multiarith,zs_cot,gpt2", tiny_gpt2_dir, data_dir), [], tmp_path, 0, 4
        )
