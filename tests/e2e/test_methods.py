"""Every fine-tuning method of the paper end to end on tiny students: real MultiArith data,
the real teacher cache (Kojima et al.'s text-davinci-002 rationales, imported), the real
training loop, decoding and scoring; each run writes results.json. The prompting methods
(zs, zs_cot, fs_cot) are covered in test_evaluate.py."""

import json
import pathlib
import subprocess
import sys

import pytest
from e2e_helpers import paper_config

from rt_jax import formats, methods
from rt_jax.tasks import load_dataset, load_split, score
from rt_jax.teacher.import_kojima import LOG_DIR, import_log
from rt_jax.teacher.store import RationaleStore

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def kojima_cache(tmp_path_factory, data_dir):
    """The real cache: Kojima et al.'s greedy Zero-shot-CoT rationales for MultiArith, plus two
    'temperature 0.7' completions per question copied from them (the logs hold no samples), so
    diverse reasoning has D=2 to choose from."""
    cache = tmp_path_factory.mktemp("cache")
    store = RationaleStore(cache)
    problems = []
    import_log(store, data_dir / LOG_DIR / "multiarith_zero_shot_cot.log", data_dir, problems)
    greedy = store.read("text-davinci-002", "zs_cot", "multiarith")
    assert len(greedy) == 600
    import dataclasses

    with store.writer("text-davinci-002", "zs_cot_t70", "multiarith") as writer:
        for rec in greedy:
            for c in range(2):
                writer.append(dataclasses.replace(rec, method="zs_cot_t70", completion_index=c))
    return cache


def check_run(workdir, method, data_dir, cache, student="gpt2"):
    """results.json against the saved predictions, re-scored with the real gold answers."""
    results = json.loads((workdir / "results.json").read_text())
    assert (results["task"], results["method"], results["student"]) == ("multiarith", method, student)
    assert [e["epoch"] for e in results["epochs"]] == [0] and results["best"]["epoch"] == 0
    dataset, test = load_dataset("multiarith", data_dir), load_split("multiarith", data_dir).test
    store = RationaleStore(workdir / "predictions")
    records = store.read(student, f"{method}.epoch00", "multiarith")
    assert sorted(r.sample_index for r in records) == test
    correct = sum(
        score(
            "multiarith",
            r.reasoning_completion,
            dataset[r.sample_index].answer,
            answer_prefix=formats.answer_prefix(methods.template(method)),
        ).correct
        for r in records
    )
    assert results["final"]["accuracy"] == pytest.approx(100.0 * correct / len(test))
    if method != "ft":
        assert results["teacher"]["name"] == "text-davinci-002"
    return results


@pytest.mark.slow  # 1-5 minutes each on the shared 2-core machine
@pytest.mark.parametrize(
    "method,model",
    [("ft", "gpt2"), ("ft_cot", "gpt2"), ("ft_cot_t70_2aug", "gpt2"), ("ft_cot", "t5"), ("ft_cot", "llama")],
)
def test_fine_tuning_methods(method, model, request, data_dir, kojima_cache, tmp_path):
    from rt_jax.data.pipeline import build_training_data
    from rt_jax.student import load_student
    from rt_jax.train import loop

    config = paper_config(
        f"multiarith,{method},gpt2", request.getfixturevalue(f"tiny_{model}_dir"), data_dir, kojima_cache
    )
    loaded = load_student(config)
    data = build_training_data(config, loaded.tokenizer, loaded.family)
    # the pairs are the teacher's correct rationales of the training questions (all questions for ft)
    train = set(load_split("multiarith", data_dir).train)
    store = RationaleStore(kojima_cache)
    correct_train = sorted(
        r.sample_index
        for r in store.read("text-davinci-002", "zs_cot", "multiarith")
        if r.correct and r.sample_index in train
    )
    expected = {"ft": sorted(train), "ft_cot": correct_train, "ft_cot_t70_2aug": sorted(correct_train * 2)}[method]
    assert sorted(p.sample_index for p in data.pairs) == expected
    loop.train(config, tmp_path / "run", loaded=loaded, data=data)
    check_run(tmp_path / "run", method, data_dir, kojima_cache)


@pytest.mark.slow
def test_train_command_line(tiny_gpt2_dir, data_dir, kojima_cache, tmp_path):
    """One command from the README: `python -m rt_jax.train --config=paper:...` (and the old
    `configs/paper.py:...` spelling, from the repository root)."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "rt_jax.train",
            "--config=paper:multiarith,ft_cot,gpt2",
            f"--config.model_path={tiny_gpt2_dir}",
            f"--config.data_dir={data_dir}",
            f"--config.teacher_cache_dir={kojima_cache}",
            "--config.train.num_epochs=1",
            "--config.train.batch_size=16",
            "--config.eval.max_new_tokens=12",
            f"--workdir={tmp_path / 'run'}",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    results = check_run(tmp_path / "run", "ft_cot", data_dir, kojima_cache)
    assert f"{results['best']['accuracy']:.2f}%" in out.stdout
    # the same workdir with another config is refused in one line
    again = subprocess.run(
        [
            sys.executable,
            "-m",
            "rt_jax.train",
            "--config=configs/paper.py:multiarith,ft,gpt2",
            f"--config.model_path={tiny_gpt2_dir}",
            f"--workdir={tmp_path / 'run'}",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert again.returncode == 2
    lines = again.stderr.strip().splitlines()
    assert len(lines) == 1 and "this workdir belongs to a run with a different config" in lines[0]
