"""The reliability campaign, replayed (slow): SIGKILL training at random points (with a
checkpoint after every step, most kills land in a save) and damage its latest checkpoint once,
then let it finish: the final train state is bitwise the uninterrupted run's. SIGKILL `teacher
generate` at random points against a flaky loopback server (429s, 500s, slow replies), then let
it finish: no record lost or duplicated, each the one a calm run writes."""

import os
import pathlib
import random
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest
from openai_server import KEY, FakeOpenAI
from teacher_helpers import http_args
from train_helpers import final_params

from rt_jax import run_dir
from rt_jax.tasks import load_dataset
from rt_jax.teacher.store import RationaleStore

pytestmark = pytest.mark.slow

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(HERE.parent / "train")])}


def start(argv, **kw):
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV, **kw)


def kill_at_random(argv, rng, kills: int, when, before_rerun=None) -> int:
    """Runs `argv` again and again, killing it (SIGKILL) `kills` times at the moment `when(proc,
    rng)` returns, then once more to the end; returns how many kills hit a live process."""
    survived = 0
    for i in range(kills):
        proc = start(argv)
        when(proc, rng)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            survived += 1
        proc.communicate()
        if before_rerun is not None:
            before_rerun(i)
    last = start(argv)
    _, err = last.communicate(timeout=900)
    assert last.returncode == 0, err[-3000:]
    return survived


def after_seconds(low: float, high: float):
    return lambda proc, rng: time.sleep(rng.uniform(low, high))


def logged_steps(workdir: pathlib.Path) -> int:
    file = workdir / run_dir.METRICS_FILE
    return file.read_text().count('"train/loss"') if file.exists() else 0


def after_a_new_step(workdir: pathlib.Path):
    """Once the run logged a step it had not logged before (each step is logged once, however
    often it is replayed), then up to 1.5 s more: with a save after every step, mostly in a save."""

    def wait(proc, rng):
        seen = logged_steps(workdir)
        deadline = time.monotonic() + 900
        while logged_steps(workdir) == seen and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 1.5))

    return wait


def largest_state_file(checkpoint: pathlib.Path) -> pathlib.Path:
    return max((p for p in (checkpoint / "state").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)


def test_training_killed_at_random_points_ends_bitwise_as_uninterrupted(data_dir, tmp_path):
    rng = random.Random(17)
    driver = [sys.executable, str(HERE / "train_driver.py"), str(data_dir), str(tmp_path), "{}", "2"]
    straight = subprocess.run([a.format(tmp_path / "a") for a in driver], capture_output=True, text=True, env=ENV)
    assert straight.returncode == 0, straight.stderr[-3000:]
    workdir = tmp_path / "b"
    damaged = []

    def damage_latest_once(i):
        checkpoints = workdir / run_dir.CHECKPOINTS_DIR
        steps = sorted(int(p.name) for p in checkpoints.glob("*") if p.name.isdigit()) if checkpoints.exists() else []
        if not damaged and i >= 2 and len(steps) >= 2:
            largest_state_file(checkpoints / str(steps[-1])).write_bytes(b"0123456789")
            damaged.append(steps[-1])

    kills = kill_at_random(
        [a.format(workdir) for a in driver],
        rng,
        kills=6,
        when=after_a_new_step(workdir),
        before_rerun=damage_latest_once,
    )
    step_a, meta_a, params_a = final_params(tmp_path / "a")
    step_b, meta_b, params_b = final_params(workdir)
    assert step_a == step_b == 12 and meta_a["epochs"] == meta_b["epochs"]
    jax.tree.map(np.testing.assert_array_equal, params_a, params_b)
    assert len(damaged) == 1  # moved aside, never deleted
    assert (workdir / run_dir.DAMAGED_CHECKPOINTS_DIR / str(damaged[0]) / "state").is_dir()
    print(f"training: {kills} kills survived, checkpoint step {damaged[0]} damaged, final state bitwise equal")
    assert kills >= 5


def flaky_plan(rng, n: int) -> list:
    """Per request: a 429 or 500 (retried), a slow reply (seconds), or a plain one (None)."""
    return [rng.choice([429, 500, 0.4, 0.05, None, None]) for _ in range(n)]


def test_generate_killed_against_a_flaky_server_loses_and_duplicates_nothing(data_dir, tmp_path):
    rng = random.Random(31)
    answers = {ex.question.strip(): ex.answer for ex in load_dataset("coin_flip", data_dir)}
    limit, completions = 40, 2
    args = [f"--limit={limit}", "--concurrency=4", "--max_retries=8"]
    with FakeOpenAI(answers) as calm:
        calm_run = subprocess.run(
            [
                sys.executable,
                "-m",
                "rt_jax.teacher",
                *http_args("generate", calm.url, tmp_path / "calm", data_dir, *args),
            ],
            capture_output=True,
            text=True,
            env={**ENV, "RT_KEY": KEY},
        )
        assert calm_run.returncode == 0, calm_run.stderr[-3000:]
    with FakeOpenAI(answers) as flaky:
        flaky.plan.extend(flaky_plan(rng, 2000))
        argv = [
            sys.executable,
            "-m",
            "rt_jax.teacher",
            *http_args("generate", flaky.url, tmp_path / "c", data_dir, *args),
        ]
        ENV["RT_KEY"] = KEY
        try:
            kills = kill_at_random(argv, rng, kills=8, when=after_seconds(3.0, 9.0))
        finally:
            del ENV["RT_KEY"]
    shard = RationaleStore(tmp_path / "c").shard_path("fake-teacher", "zs_cot_t70", "coin_flip")
    lines = [line for line in shard.read_text().splitlines() if line.strip()]

    def content(root):
        return {
            r.key: (r.reasoning_completion, r.answer_completion, r.correct)
            for r in RationaleStore(root).read("fake-teacher", "zs_cot_t70", "coin_flip")
        }

    got, want = content(tmp_path / "c"), content(tmp_path / "calm")
    assert len(want) == limit * completions
    assert len(lines) == len(got) == len(want)  # no line written twice
    assert got == want  # none lost, each the calm run's
    print(
        f"generate: {kills} kills survived, {len(want) - len(got.keys() & want.keys())} records lost, "
        f"{len(lines) - len(got)} duplicated"
    )
    assert kills >= 5
