"""The offline demo end to end at toy size (every demo method through the real modules), and
the full-size demo as a slow test."""

import json
import subprocess
import sys

import pytest

from rt_jax import demo
from rt_jax.tasks import load_dataset, load_split, score
from rt_jax.teacher.store import RationaleStore


def toy_config():
    c = demo.load_demo_config()
    c.demo.num_train, c.demo.num_test, c.demo.steps, c.demo.n_embd = 24, 8, 3, 32
    c.train.batch_size, c.eval.batch_size = 8, 8
    return c


def check_demo(out, methods, rows):
    """The cache, training examples, results.json and table of a finished demo, re-derived from
    the files the real modules wrote."""
    assert [r.method for r in rows] == list(methods)
    data_dir = out / "data"
    dataset, split = load_dataset("arith_small", data_dir), load_split("arith_small", data_dir)
    store = RationaleStore(out / "teacher_cache")
    greedy = store.read("rule-based", "zs_cot", "arith_small")
    sampled = store.read("rule-based", "zs_cot_t70", "arith_small")
    assert len(greedy) == 24 and len(sampled) == 48  # greedy + 2 samples per training question
    for rec in greedy + sampled:  # the cache's flags agree with the gold answers
        assert rec.correct == (rec.prediction == dataset[rec.sample_index].answer)
    expected_pairs = {
        "zs": 0,
        "ft": len(split.train),
        "ft_cot": sum(r.correct for r in greedy),
        "ft_cot_t70_2aug": sum(r.correct for r in sampled),
    }
    table = (out / "demo_results.md").read_text()
    for row in rows:
        assert row.train_examples == expected_pairs[row.method]
        run = out / "runs" / row.method
        results = json.loads((run / "results.json").read_text())
        assert results["final"]["accuracy"] == row.accuracy and results["method"] == row.method
        (shard,) = RationaleStore(run / "predictions").shards()
        records = RationaleStore(run / "predictions").read(*shard)
        assert sorted(r.sample_index for r in records) == split.test
        prefix = "-->" if row.method.startswith("ft_cot") else None
        correct = sum(
            score("arith_small", r.reasoning_completion, dataset[r.sample_index].answer, answer_prefix=prefix).correct
            for r in records
        )
        assert row.accuracy == pytest.approx(100.0 * correct / len(records))
        assert f"| {row.title} | {row.train_examples} | {row.accuracy:.1f} |" in table


def test_toy_demo_diverse_reasoning(tmp_path):
    """The default suite's end-to-end run: rule-based teacher -> real cache -> D=2 correct
    rationales -> real training loop -> decoding -> scoring -> table; a re-run reuses it."""
    out = tmp_path / "demo"
    rows = demo.run_demo(toy_config(), out, ("ft_cot_t70_2aug",), stream=sys.stderr)
    check_demo(out, ("ft_cot_t70_2aug",), rows)
    before = {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("*") if p.is_file()}
    again = demo.run_demo(toy_config(), out, ("ft_cot_t70_2aug",), stream=sys.stderr)
    assert again[0].reused and again[0].accuracy == rows[0].accuracy
    assert {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("*") if p.is_file()} == before


@pytest.mark.slow  # three training runs: ~2 minutes on the shared machine
def test_toy_demo_runs_every_method(tmp_path):
    methods = ("zs", "ft", "ft_cot", "ft_cot_t70_2aug")
    rows = demo.run_demo(toy_config(), tmp_path / "demo", methods, stream=sys.stderr)
    check_demo(tmp_path / "demo", methods, rows)


def test_demo_bad_methods(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "rt_jax.demo", f"--out_dir={tmp_path}", "--methods=zs,sft"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "error: --methods: unknown ['sft']; expected zs, ft, ft_cot or ft_cot_t70_<D>aug"
    ]


@pytest.mark.slow
def test_full_demo_shows_the_fine_tune_cot_effect(tmp_path):
    """README's main command at full size (minutes): Fine-tune-CoT beats vanilla fine-tuning."""
    out = subprocess.run(
        [sys.executable, "-m", "rt_jax.demo", f"--out_dir={tmp_path}"], capture_output=True, text=True, timeout=900
    )
    assert out.returncode == 0, out.stderr[-2000:]
    rows = {r["method"]: r for r in json.loads((tmp_path / "demo_results.json").read_text())["rows"]}
    assert rows["ft_cot"]["accuracy"] > rows["ft"]["accuracy"] + 20
    assert rows["ft_cot_t70_4aug"]["accuracy"] > rows["ft"]["accuracy"] + 20
    assert "| Fine-tune-CoT |" in out.stdout


@pytest.mark.slow  # two spawned worker processes start JAX: ~1 minute on the shared machine
def test_toy_demo_two_workers_matches_one_after_another(tmp_path):
    """Methods trained side by side in worker processes give the same table as run in turn."""
    methods = ("zs", "ft_cot", "ft_cot_t70_2aug")
    side_by_side = demo.run_demo(toy_config(), tmp_path / "two", methods, stream=sys.stderr, workers=2)
    check_demo(tmp_path / "two", methods, side_by_side)
    in_turn = demo.run_demo(toy_config(), tmp_path / "one", methods, stream=sys.stderr, workers=1)
    assert [(r.method, r.train_examples, r.num_test) for r in side_by_side] == [
        (r.method, r.train_examples, r.num_test) for r in in_turn
    ]
    # one-thread XLA may sum in another order: accuracies of a 3-step toy agree within a question
    for a, b in zip(side_by_side, in_turn):
        assert abs(a.accuracy - b.accuracy) <= 100.0 / a.num_test
