"""The offline demo end to end at toy size (every demo method through the real modules), and
the full-size demo as a slow test."""

import json
import re
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


PROGRESS_LINE = re.compile(r"epoch \d+ \[|epoch \d+: accuracy")  # the training loop's step and accuracy lines


def check_labels(stderr: str, methods) -> None:
    """Every progress line of the training loop starts with its run's [method]; each method has
    its step and accuracy lines."""
    lines = [line for line in stderr.replace("\r", "\n").splitlines() if PROGRESS_LINE.search(line)]
    assert lines and all(re.match(r"\[[a-z0-9_]+\] epoch \d+", line) for line in lines), lines
    for method in methods:
        assert any(line.startswith(f"[{method}] epoch 0 [") for line in lines), (method, lines)
        assert any(line.startswith(f"[{method}] epoch 0: accuracy") for line in lines), (method, lines)


def test_toy_demo_diverse_reasoning(tmp_path, capfd):
    """The default suite's end-to-end run: rule-based teacher -> real cache -> correct rationales
    (greedy for ft, D=2 for diverse) -> real training loop -> decoding -> scoring -> table and
    report; progress lines carry their method; a re-run reuses the runs and says so."""
    out, methods = tmp_path / "demo", ("ft", "ft_cot_t70_2aug")
    rows = demo.run_demo(toy_config(), out, methods, stream=sys.stdout, eta_every_s=0.2)
    check_demo(out, methods, rows)
    first = capfd.readouterr()
    check_labels(first.err, methods)
    assert first.out.splitlines()[0].endswith(
        f"writing under {out}: task data {out / 'data'}, teacher cache {out / 'teacher_cache'}, "
        f"runs {out / 'runs'}/<method>, table {out / 'demo_results.md'}, report and plots {out / 'report'}"
    )
    # each training run plans demo.steps=3 steps; the ETA line comes when a run's steps are logged
    assert re.search(r"overall: \d+/6 training steps, ETA \d\d:\d\d:\d\d", first.out), first.out
    assert "reused" not in first.out
    report = (out / "report" / "report.md").read_text()  # rt_jax.report of the demo's runs
    assert all(f"| {method} |" in report for method in methods), report

    before = {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("*") if p.is_file()}
    again = demo.run_demo(toy_config(), out, methods, stream=sys.stdout)
    assert all(r.reused for r in again) and [r.accuracy for r in again] == [r.accuracy for r in rows]
    assert {p: p.stat().st_mtime_ns for p in (out / "runs").rglob("*") if p.is_file()} == before
    second = capfd.readouterr()
    for method in methods:
        assert f"] {method}: reused finished run {out / 'runs' / method}\n" in second.out
    assert not PROGRESS_LINE.search(second.err) and "training ..." not in second.out


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
        [sys.executable, "-m", "rt_jax.demo", f"--out_dir={tmp_path}"], capture_output=True, text=True, timeout=2400
    )
    assert out.returncode == 0, out.stderr[-2000:]
    rows = {r["method"]: r for r in json.loads((tmp_path / "demo_results.json").read_text())["rows"]}
    assert rows["ft_cot"]["accuracy"] > rows["ft"]["accuracy"] + 20
    assert rows["ft_cot_t70_4aug"]["accuracy"] > rows["ft"]["accuracy"] + 20
    assert "| Fine-tune-CoT |" in out.stdout


@pytest.mark.slow  # two spawned worker processes start JAX: ~1 minute on the shared machine
def test_toy_demo_two_workers_matches_one_after_another(tmp_path, capfd):
    """Methods trained side by side in worker processes give the same table as run in turn."""
    methods = ("zs", "ft_cot", "ft_cot_t70_2aug")
    side_by_side = demo.run_demo(toy_config(), tmp_path / "two", methods, stream=sys.stderr, workers=2)
    check_demo(tmp_path / "two", methods, side_by_side)
    check_labels(capfd.readouterr().err, ("ft_cot", "ft_cot_t70_2aug"))  # the workers' interleaved lines
    in_turn = demo.run_demo(toy_config(), tmp_path / "one", methods, stream=sys.stderr, workers=1)
    assert [(r.method, r.train_examples, r.num_test) for r in side_by_side] == [
        (r.method, r.train_examples, r.num_test) for r in in_turn
    ]
    # one-thread XLA may sum in another order: accuracies of a 3-step toy agree within a question
    for a, b in zip(side_by_side, in_turn):
        assert abs(a.accuracy - b.accuracy) <= 100.0 / a.num_test
