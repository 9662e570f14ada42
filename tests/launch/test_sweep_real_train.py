"""A local sweep of real training runs (`python -m rt_jax.train` on a tiny byte-level GPT-2)
over two real tasks and two D values (diverse reasoning from a teacher cache): killed mid-run,
restarted, finished without redoing finished runs, and reported with `python -m rt_jax.report`."""

import json
import signal
import subprocess
import sys
import time

import pytest
from launch_helpers import REPO_ROOT, TASKS, make_tiny_setup, run_cli, write_sweep_config

from launch import grid, run_state
from rt_jax import run_dir


def wait_for(predicate, proc, timeout=600.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def start_sweep(config):
    return subprocess.Popen(
        [sys.executable, "-m", "launch.sweep", f"--sweep={config}", "--poll_seconds=0.2"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_real_sweep_survives_a_kill_and_reports(tmp_path, data_dir):
    student = make_tiny_setup(tmp_path / "tiny", data_dir)
    root = tmp_path / "sweep"
    config = write_sweep_config(
        tmp_path / "sweep.py",
        root,
        command=grid.DEFAULT_COMMAND,
        train_config="paper",  # the packaged config, by its short name
        tasks=TASKS,
        methods=("ft_cot_t70_{D}aug",),
        num_rationales=(1, 2),
        overrides={
            "data_dir": str(data_dir),
            "teacher_cache_dir": str(tmp_path / "tiny" / "teacher_cache"),
            "teacher": "oracle",
            "model_path": str(student),
            "train": {
                "num_epochs": 2,
                "batch_size": 8,
                "max_seq_len": 512,
                "checkpoint_every_steps": 2,
                "log_every_steps": 1,
            },
            "eval": {"max_new_tokens": 8, "batch_size": 64, "every_epoch": False},
        },
    )
    runs = {r.name: root / "runs" / r.name for r in grid.expand(_load(config))}
    assert len(runs) == 4
    first, second = list(runs.values())[:2]

    sweep = start_sweep(config)
    wait_for(
        lambda: run_dir.results_complete(first) and any(p.name.isdigit() for p in (second / "checkpoints").glob("*")),
        sweep,
    )
    sweep.send_signal(signal.SIGTERM)
    out, err = sweep.communicate(timeout=120)
    assert sweep.returncode == 130, err
    status = run_cli("sweep", f"--sweep={config}", "--status").stdout
    assert "done 1, running 0, failed 0, interrupted 1, pending 2 (of 4 runs)" in status, status

    sweep = start_sweep(config)
    out, err = sweep.communicate(timeout=1200)
    assert sweep.returncode == 0, err + out
    assert "done 4, running 0, failed 0, interrupted 0, pending 0 (of 4 runs)" in out
    assert f"start  {first.name}" not in out  # finished run not redone
    assert run_state.read_state(first)["attempts"] == 1
    assert run_state.read_state(second)["attempts"] == 2
    # Resumed from its checkpoint: the steps before it were trained (and logged) once.
    logged = [
        json.loads(line)["step"]
        for line in (second / "metrics.jsonl").read_text().splitlines()
        if any(k.startswith("train/") for k in json.loads(line))
    ]
    assert logged.count(1) == 1 and set(logged) == set(range(1, max(logged) + 1))
    for name, workdir in runs.items():
        results = json.loads((workdir / "results.json").read_text())
        assert [e["epoch"] for e in results["epochs"]] == [0, 1], name
        assert results["task"] == name.split("__")[0] and results["method"] == name.split("__")[2]
    report = (root / "report" / "report.md").read_text()
    for task in TASKS:
        assert task in report


def _load(path):
    from ml_collections import config_flags

    return config_flags.config_flags._LoadConfigModule("sweep", str(path)).get_config()  # noqa: SLF001
