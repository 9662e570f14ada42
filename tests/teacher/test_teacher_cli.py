"""`python -m rt_jax.teacher`: import, stats (table and JSON), generate, and the exit statuses."""

import json

import pytest
from openai_server import KEY, FakeOpenAI
from teacher_helpers import cli, http_args

from rt_jax.tasks import load_split
from rt_jax.teacher.import_kojima import KOJIMA_METHOD, KOJIMA_TEACHER
from rt_jax.teacher.record import SCHEMA_VERSION
from rt_jax.teacher.stats import shard_stats
from rt_jax.teacher.store import RationaleStore


@pytest.fixture(scope="module")
def cache(tmp_path_factory, data_dir):
    root = tmp_path_factory.mktemp("cli_cache")
    out = cli("import_kojima", f"--cache_dir={root}", f"--data_dir={data_dir}", "--tasks=coin_flip,multiarith")
    assert out.returncode == 0, out.stderr
    return root, out.stdout


def test_import_prints_blocks_matched_and_accuracies(cache):
    _, stdout = cache
    rows = {line.split()[0]: line.split() for line in stdout.splitlines()[1:] if not line.startswith("note:")}
    assert set(rows) == {"coin_flip", "multiarith"}
    # blocks, matched, written, cached, kojima%, ours%, training samples with a correct rationale
    assert rows["coin_flip"][1:] == ["500", "500", "500", "0", "91.40", "91.40", "320"]
    assert rows["multiarith"][1:7] == ["600", "600", "600", "0", "78.67", "78.67"]


def test_stats_json_is_per_task_and_agrees_with_the_records(cache, data_dir):
    root, _ = cache
    out = cli("stats", f"--cache_dir={root}", f"--data_dir={data_dir}", "--json")
    assert out.returncode == 0, out.stderr
    stats = json.loads(out.stdout)
    assert list(stats) == ["multiarith", "coin_flip"]  # paper order
    store = RationaleStore(root)
    for task, row in stats.items():
        records = store.read(KOJIMA_TEACHER, KOJIMA_METHOD, task)
        split = load_split(task, data_dir)
        assert row == shard_stats(records, set(split.train), set(split.test))
        test = [r for r in records if r.sample_index in set(split.test)]
        assert row["test_accuracy"] == pytest.approx(100 * sum(r.correct for r in test) / len(test), abs=1e-4)
    assert stats["coin_flip"]["accuracy"] == 91.4 and stats["coin_flip"]["samples"] == 500
    table = cli("stats", f"--cache_dir={root}", f"--data_dir={data_dir}")
    assert table.returncode == 0 and "coin_flip" in table.stdout and "91.4" in table.stdout


def test_bad_cache_lines_are_reported_skipped_and_exit_1(cache, data_dir, tmp_path):
    root, _ = cache
    copy = tmp_path / "copy"
    shard = RationaleStore(root).shard_path(KOJIMA_TEACHER, KOJIMA_METHOD, "coin_flip")
    target = RationaleStore(copy).shard_path(KOJIMA_TEACHER, KOJIMA_METHOD, "coin_flip")
    target.parent.mkdir(parents=True)
    lines = shard.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[4] = lines[4].replace(f'"schema_version": {SCHEMA_VERSION}', '"schema_version": 7')
    target.write_text("".join(lines), encoding="utf-8")
    out = cli("stats", f"--cache_dir={copy}", f"--data_dir={data_dir}", "--json")
    assert out.returncode == 1
    assert f"{target}:5: unknown schema_version 7" in out.stderr
    assert out.stderr.strip().endswith("1 problem(s) reported above; those items were skipped")
    assert json.loads(out.stdout)["coin_flip"]["completions"] == 499


def test_usage_errors_exit_2_without_a_traceback(tmp_path, data_dir):
    for args in (
        ["nope"],
        ["stats", "--tasks=nope", f"--data_dir={data_dir}"],
        ["export_rt", f"--cache_dir={tmp_path}"],
    ):
        out = cli(*args)
        assert out.returncode == 2 and out.stderr.startswith("error: ") and "Traceback" not in out.stderr
    # a mistyped cache folder is not an empty cache
    out = cli("stats", f"--cache_dir={tmp_path / 'typo'}", f"--data_dir={data_dir}")
    assert out.returncode == 2 and "--cache_dir=" in out.stderr and "no such folder" in out.stderr
    assert not (tmp_path / "typo").exists()


@pytest.fixture
def coin_server(data_dir):
    from rt_jax.tasks import load_dataset

    with FakeOpenAI({ex.question.strip(): ex.answer for ex in load_dataset("coin_flip", data_dir)}) as srv:
        yield srv


def test_generate_over_http_then_resume_and_stats_shows_the_tokens(coin_server, tmp_path, data_dir):
    args = http_args("generate", coin_server.url, tmp_path, data_dir, "--batch_size=4")
    first = cli(*args, "--limit=3", env={"RT_KEY": KEY})
    assert first.returncode == 0, first.stderr
    assert "coin_flip: requested=6 cached=0 written=6 prompt_tokens=" in first.stdout
    assert KEY not in first.stdout + first.stderr
    second = cli(*args, "--limit=5", env={"RT_KEY": KEY})
    assert "coin_flip: requested=10 cached=6 written=4" in second.stdout
    records = RationaleStore(tmp_path).read("fake-teacher", "zs_cot_t70", "coin_flip")
    train = load_split("coin_flip", data_dir).train[:5]
    assert sorted((r.sample_index, r.completion_index) for r in records) == [(i, c) for i in train for c in (0, 1)]
    assert all(r.correct == (r.completion_index == 0) for r in records)  # the fake teacher's even draws

    out = cli(
        "stats",
        f"--cache_dir={tmp_path}",
        f"--data_dir={data_dir}",
        "--teacher=fake-teacher",
        "--method=zs_cot_t70",
        "--json",
    )
    assert out.returncode == 0, out.stderr
    row = json.loads(out.stdout)["coin_flip"]
    assert row["completions_with_usage"] == 10
    assert {k: row[k] for k in coin_server.usage} == coin_server.usage  # what the server billed, summed
    assert {k: sum(r.usage[k] for r in records) for k in coin_server.usage} == coin_server.usage
    table = cli(
        "stats", f"--cache_dir={tmp_path}", f"--data_dir={data_dir}", "--teacher=fake-teacher", "--method=zs_cot_t70"
    )
    header, line = table.stdout.splitlines()
    assert "prompt tokens" in header and "compl. tokens" in header
    assert line.split()[-2:] == [str(coin_server.usage["prompt_tokens"]), str(coin_server.usage["completion_tokens"])]


def test_a_repaired_cut_line_is_reported_as_repaired_and_generate_exits_0(coin_server, tmp_path, data_dir):
    args = http_args("generate", coin_server.url, tmp_path, data_dir, "--limit=2")
    assert cli(*args, env={"RT_KEY": KEY}).returncode == 0
    shard = RationaleStore(tmp_path).shard_path("fake-teacher", "zs_cot_t70", "coin_flip")
    whole = shard.read_bytes()
    with open(shard, "ab") as f:  # a writer killed in the middle of a line
        f.write(whole.splitlines(keepends=True)[0][:50])
    out = cli(*args, env={"RT_KEY": KEY})
    assert out.returncode == 0, out.stderr
    assert "coin_flip: requested=4 cached=4 written=0" in out.stdout
    assert out.stderr.strip().splitlines() == [
        f"{shard}: repaired: cut a truncated last line (50 bytes, saved to {shard.name}.partial-0) "
        "left by an interrupted writer; no record lost"
    ]
    assert shard.read_bytes() == whole


@pytest.mark.slow
def test_generate_killed_at_random_points_loses_and_duplicates_nothing(coin_server, tmp_path, data_dir):
    import os
    import random
    import signal
    import subprocess
    import sys
    import time

    rng = random.Random(0)
    coin_server.plan.extend(([0.05] * 4 + [429, 500]) * 300)  # slow and flaky
    args = http_args(
        "generate", coin_server.url, tmp_path, data_dir, "--limit=40", "--num_completions=4", "--batch_size=8"
    )
    shard = RationaleStore(tmp_path).shard_path("fake-teacher", "zs_cot_t70", "coin_flip")
    kept, kills = b"", 0
    for _ in range(10):
        proc = subprocess.Popen(
            [sys.executable, "-m", "rt_jax.teacher", *args],
            env={**os.environ, "RT_KEY": KEY},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(rng.uniform(0.5, 2.5))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        now = shard.read_bytes() if shard.exists() else b""
        assert now.startswith(kept)  # every whole line written before a kill is still there
        kept = now[: now.rfind(b"\n") + 1]
    assert kills >= 5
    final = cli(*args, env={"RT_KEY": KEY})
    assert final.returncode == 0, final.stderr
    lines = shard.read_bytes().splitlines()
    records = RationaleStore(tmp_path).read("fake-teacher", "zs_cot_t70", "coin_flip")
    train = load_split("coin_flip", data_dir).train[:40]
    assert len(lines) == len(records) == 160  # nothing lost, nothing twice
    assert sorted(r.key[3:] for r in records) == sorted((s, c) for s in train for c in range(4))
