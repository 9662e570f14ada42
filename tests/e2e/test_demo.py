"""The offline demo end to end at toy size (every demo method through the real modules), and
the full-size demo as a slow test."""

import json
import subprocess
import sys

import pytest

from rt_jax import configs, demo
from rt_jax.tasks import load_dataset, load_split, score
from rt_jax.teacher.store import RationaleStore


def toy_config():
    c = configs.load("demo")
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
        "error: --methods: unknown demo method 'sft'; expected zs, ft, ft_cot or ft_cot_t70_<D>aug"
    ]
    assert not any(tmp_path.iterdir())  # refused before writing anything


TOY_FLAGS = [
    "--config.demo.num_train=8",
    "--config.demo.num_test=4",
    "--config.demo.n_embd=32",
    "--config.eval.batch_size=4",
    "--workers=1",
]


def run_demo_command(*flags, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "rt_jax.demo", *flags], capture_output=True, text=True, timeout=300, cwd=cwd
    )


def test_demo_honours_a_config_file(tmp_path):
    """--config=<a copy of demo.py> with a change: the runs use the copy's per-method fields."""
    copy = tmp_path / "my_demo.py"
    text = (configs.DIR / "demo.py").read_text()
    assert "e.max_new_tokens = 80 if m.rationale_source else 8" in text
    copy.write_text(text.replace("e.max_new_tokens = 80 if m.rationale_source else 8", "e.max_new_tokens = 3"))
    out = run_demo_command(f"--config={copy}", f"--out_dir={tmp_path / 'out'}", "--methods=zs", *TOY_FLAGS)
    assert out.returncode == 0, out.stderr[-2000:]
    snapshot = json.loads((tmp_path / "out" / "runs" / "zs" / "config.json").read_text())
    assert snapshot["eval"]["max_new_tokens"] == 3 and snapshot["demo"]["num_test"] == 4
    (shard,) = RationaleStore(tmp_path / "out" / "runs" / "zs" / "predictions").shards()
    records = RationaleStore(tmp_path / "out" / "runs" / "zs" / "predictions").read(*shard)
    assert len(records) == 4 and all(len(r.reasoning_completion.encode()) <= 3 for r in records)  # 3 byte tokens
    assert "| Zero-shot | 0 |" in (tmp_path / "out" / "demo_results.md").read_text()


@pytest.mark.parametrize(
    "body,message",
    [
        (
            "from rt_jax.configs import demo\n\ndef get_config():\n    return demo.get_config()\n",
            "get_config('zs') failed (TypeError: get_config() takes 0 positional arguments but 1 was given); "
            "expected a demo config like rt_jax/configs/demo.py",
        ),
        (
            "from rt_jax.configs import paper\n\ndef get_config(arg=None):\n    return paper.get_config()\n",
            "the demo runs task arith_small, not 'multiarith'",
        ),
        (
            "from rt_jax.configs import demo\n\ndef get_config(m=None):\n"
            "    c = demo.get_config(m)\n    del c.demo['n_head']\n    return c\n",
            "no field demo.n_head; expected every field of rt_jax/configs/demo.py",
        ),
    ],
)
def test_demo_refuses_a_bad_config_file_before_writing(tmp_path, body, message):
    bad = tmp_path / "bad_demo.py"
    bad.write_text(body)
    out = run_demo_command(f"--config={bad}", f"--out_dir={tmp_path / 'out'}", "--methods=zs,ft")
    assert out.returncode == 2 and out.stderr.strip().splitlines() == [f"error: --config={bad}: {message}"]
    assert not (tmp_path / "out").exists()
    missing = run_demo_command(f"--config={tmp_path / 'none.py'}", f"--out_dir={tmp_path / 'out'}")
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
    assert "none.py" in missing.stderr and not (tmp_path / "out").exists()


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
