"""launch.sweep and launch.grid: the ready grids against the paper's table, bad input, and
local sweeps of a fake train command (same flags and results.json as rt_jax.train) that fail,
retry, are killed and restarted."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from launch_helpers import REPO_ROOT, run_cli, starts, write_sweep_config

from launch import grid, run_state
from rt_jax import configs, methods, paper_results, run_dir
from rt_jax.errors import UserError


def load_sweep(name):
    return configs.load(f"sweeps/{name}")


def test_paper_grid_is_exactly_the_papers_table():
    runs = grid.expand(load_sweep("paper"))
    assert len({r.name for r in runs}) == len(runs)
    ours = {(r.student, r.method, r.task) for r in runs}
    candidates = {"zs", "fs_cot", "ft", "ft_cot", "ft_cot_t70_8aug", "ft_cot_t70_64aug"}
    students = [
        s
        for s, (family, _) in paper_results.STUDENT_SIZES.items()
        if family in ("gpt2", "t5", "flan_t5") and s in {r.student for r in runs}
    ]
    assert len(students) == 9
    tasks = {r.task for r in paper_results.load_paper_results()}
    published = {
        (s, m, t)
        for s in students
        for m in candidates
        for t in tasks
        if paper_results.paper_accuracy(s, m, t) is not None
    }
    assert ours == published
    assert {r.seed for r in runs} == {0}


def test_diverse_grid_covers_every_degree():
    runs = grid.expand(load_sweep("diverse_reasoning"))
    assert {methods.degree(r.method) for r in runs} == {1, 2, 4, 8, 16, 32, 64}
    assert len(runs) == 4 * 9 * 7 == len({r.name for r in runs})


def test_runs_have_stable_names_and_commands(tmp_path):
    cfg = load_sweep("diverse_reasoning")
    cfg.overrides = {"train": {"batch_size": 16}}
    first, again = grid.expand(cfg), grid.expand(cfg)
    assert [r.name for r in first] == [r.name for r in again]
    cfg.grids = [{"tasks": ("svamp",), "overrides": {"train": {"batch_size": 32}, "seed": 3}}]
    (svamp, *_) = grid.expand(cfg)
    assert (svamp.seed, svamp.overrides) == (3, (("train.batch_size", "32"),))  # a seed override is the run's seed
    cfg.grids = []
    run = first[0]
    assert run.name == "multiarith__gpt2__ft_cot_t70_1aug__seed0__train.batch_size=16"
    assert grid.command_for(run, cfg, "/w/x") == [
        sys.executable,
        "-m",
        "rt_jax.train",
        "--config=paper:multiarith,ft_cot_t70_1aug,gpt2,0",
        "--workdir=/w/x",
        "--config.train.batch_size=16",
    ]


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("tasks", ("multiarith", "mulitarith"), "grids[0]: unknown task 'mulitarith'"),
        ("students", ("gpt5",), "grids[0]: unknown student 'gpt5'"),
        ("methods", ("ft_cot_t70_{D}aug",), "grids[0]: unknown method 'ft_cot_t70_128aug'"),
        ("seeds", (), "grids[0].seeds is empty"),
    ],
)
def test_unknown_grid_entries_are_refused(field, value, message):
    cfg = load_sweep("diverse_reasoning")
    cfg[field] = value
    if field == "methods":
        cfg.num_rationales = (64, 128)
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace("]", r"\]")):
        grid.expand(cfg)


def test_bad_sweeps_exit_2_before_anything_starts(tmp_path):
    config = write_sweep_config(tmp_path / "s.py", tmp_path / "root", students=("gpt-9",))
    done = run_cli("sweep", f"--sweep={config}")
    assert done.returncode == 2 and "unknown student 'gpt-9'" in done.stderr, done.stderr
    config = write_sweep_config(tmp_path / "s.py", tmp_path / "root", axes={"train": {"learning_rat": (1e-4,)}})
    done = run_cli("sweep", f"--sweep={config}")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "grids[0]: field 'train.learning_rat' is not in the run config" in done.stderr, done.stderr
    (tmp_path / "a_file").write_text("")
    config = write_sweep_config(tmp_path / "s.py", tmp_path / "a_file" / "root")
    done = run_cli("sweep", f"--sweep={config}")
    assert done.returncode == 2 and "cannot write there" in done.stderr, done.stderr
    config = write_sweep_config(tmp_path / "s.py", tmp_path / "root")
    done = run_cli("sweep", f"--sweep={config}", "--tpu_vms=vm-a", "--zone=us-central2-b")
    assert done.returncode == 2 and "needs a sweep root on Cloud Storage" in done.stderr
    for done in (run_cli("sweep"), run_cli("sweep", f"--sweep={config}", "--only=(")):
        assert done.returncode == 2 and done.stderr.startswith("error: ")
    assert not (tmp_path / "root").exists()  # nothing started, nothing written


def test_packaged_sweep_by_short_name(tmp_path):
    """--sweep= takes a packaged sweep by name, from any working directory; its runs name the
    packaged run config the same way."""
    root = tmp_path / "root"
    done = subprocess.run(
        [sys.executable, "-m", "launch.sweep", "--sweep=sweeps/diverse_reasoning", f"--sweep.root={root}", "--dry_run"],
        cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"sweep diverse_reasoning: 252 runs in {root}/runs")
    assert "-m rt_jax.train --config=paper:multiarith,ft_cot_t70_1aug,gpt2,0 " in done.stdout
    bad = run_cli("sweep", "--sweep=sweeps/nope", f"--sweep.root={root}", "--dry_run")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == ["error: --sweep: [Errno 2] No such file or directory: 'sweeps/nope'"]
    assert not root.exists()


def test_dry_run_dispatch_to_tpu_vms(tmp_path):
    config = write_sweep_config(tmp_path / "s.py", "gs://bucket/sweep", seeds=(0, 1), command=grid.DEFAULT_COMMAND)
    done = run_cli("sweep", f"--sweep={config}", "--tpu_vms=vm-a,vm-b", "--zone=us-central2-b", "--dry_run")
    assert done.returncode == 0, done.stderr
    lines = [line.strip() for line in done.stdout.splitlines()]
    assert "slots vm-a, vm-b" in lines[0]
    assert lines[1] == "multiarith__gpt2__ft_cot__seed0"
    assert lines[2] == (
        "gcloud compute tpus tpu-vm ssh vm-a --zone=us-central2-b --worker=all "
        "'--command=cd rt_jax && python3 -m rt_jax.train "
        "--config=paper:multiarith,ft_cot,gpt2,0 "
        "--workdir=gs://bucket/sweep/runs/multiarith__gpt2__ft_cot__seed0'"
    )


def test_local_sweep_retries_failures_and_skips_finished_runs(tmp_path):
    root = tmp_path / "root"
    config = write_sweep_config(
        tmp_path / "s.py",
        root,
        parallel=2,
        seeds=(0, 1),
        grids=[{}, {"tasks": ("svamp",), "overrides": {"fake_fail": 1}}],
    )
    done = run_cli("sweep", f"--sweep={config}", "--poll_seconds=0.05", "--noreport")
    assert done.returncode == 1, done.stderr
    assert "2 runs not done" in done.stderr
    runs = root / "runs"
    ok = ["multiarith__gpt2__ft_cot__seed0", "multiarith__gpt2__ft_cot__seed1"]
    bad = ["svamp__gpt2__ft_cot__seed0__fake_fail=1", "svamp__gpt2__ft_cot__seed1__fake_fail=1"]
    for name in ok:
        assert starts(runs / name) == [0]
        assert run_state.read_state(runs / name)["status"] == "done"
    for name in bad:
        assert starts(runs / name) == [0, 0]  # tried max_attempts times
        state = run_state.read_state(runs / name)
        assert state["status"] == "failed" and state["failures"] == 2 and state["exit_status"] == 1
        assert "failing on purpose" in open(state["log"]).read()
    status = run_cli("sweep", f"--sweep={config}", "--status")
    assert "done 2, running 0, failed 2, interrupted 0, pending 0 (of 4 runs)" in status.stdout
    assert "done             1  10.00  multiarith__gpt2__ft_cot__seed0" in status.stdout
    assert "done             1  20.00  multiarith__gpt2__ft_cot__seed1" in status.stdout

    again = run_cli("sweep", f"--sweep={config}", "--poll_seconds=0.05", "--noreport")
    assert again.returncode == 1 and "start" not in again.stdout  # nothing redone, nothing retried
    assert [starts(runs / n) for n in ok + bad] == [[0], [0], [0, 0], [0, 0]]
    retry = run_cli(
        "sweep", f"--sweep={config}", "--poll_seconds=0.05", "--noreport", "--retry_failed", "--only=svamp.*seed1"
    )
    assert retry.returncode == 1
    assert [starts(runs / n) for n in ok + bad] == [[0], [0], [0, 0], [0, 0, 0, 0]]


FAKE_24 = "fake_step_seconds=0.05+fake_steps=24"  # the overrides, in the run names


def _wait_for(predicate, timeout=120.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _start_sweep(config):
    return subprocess.Popen(
        [sys.executable, "-m", "launch.sweep", f"--sweep={config}", "--poll_seconds=0.05", "--noreport"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_killed_sweep_resumes_without_redoing_finished_runs(tmp_path):
    root = tmp_path / "root"
    config = write_sweep_config(
        tmp_path / "s.py", root, seeds=(0, 1, 2), overrides={"fake_steps": 24, "fake_step_seconds": 0.05}
    )
    runs = root / "runs"
    first, second, third = (runs / f"multiarith__gpt2__ft_cot__seed{s}__{FAKE_24}" for s in range(3))
    sweep = _start_sweep(config)
    _wait_for(lambda: (first / "results.json").exists() and (second / "checkpoint.json").exists())
    sweep.send_signal(signal.SIGTERM)  # like Ctrl-C or a preempted launcher VM
    out, err = sweep.communicate(timeout=60)
    assert sweep.returncode == 130, err
    assert f"interrupted multiarith__gpt2__ft_cot__seed1__{FAKE_24}" in out
    status = run_cli("sweep", f"--sweep={config}", "--status").stdout
    assert "done 1, running 0, failed 0, interrupted 1, pending 1 (of 3 runs)" in status
    stopped_at = json.loads((second / "checkpoint.json").read_text())["step"]
    assert 0 < stopped_at < 24

    sweep = _start_sweep(config)
    out, err = sweep.communicate(timeout=120)
    assert sweep.returncode == 0, err
    assert starts(first) == [0]  # finished run not redone
    assert starts(second) == [0, stopped_at]  # resumed from its checkpoint
    assert starts(third) == [0]
    assert "done 3, running 0, failed 0, interrupted 0, pending 0 (of 3 runs)" in out


def test_restarted_sweep_adopts_a_run_its_killed_predecessor_left_running(tmp_path):
    root = tmp_path / "root"
    config = write_sweep_config(
        tmp_path / "s.py", root, seeds=(0, 1), overrides={"fake_steps": 30, "fake_step_seconds": 0.05}
    )
    first = root / "runs" / "multiarith__gpt2__ft_cot__seed0__fake_step_seconds=0.05+fake_steps=30"
    sweep = _start_sweep(config)
    _wait_for(lambda: (first / "checkpoint.json").exists())
    sweep.kill()  # SIGKILL: no clean-up; the run goes on in its own session
    sweep.communicate()
    assert run_state.run_status(first, 2)[0] == "running"
    sweep = _start_sweep(config)
    out, err = sweep.communicate(timeout=120)
    assert sweep.returncode == 0, err
    assert f"adopt  {first.name}" in out
    assert starts(first) == [0]  # waited for it, did not start it twice
    assert run_state.read_state(first)["status"] == "done"


def test_state_files_are_replaced_whole(tmp_path):
    run_state.write_state(tmp_path, status="running", pid=1)
    run_state.write_state(tmp_path, attempts=2)
    assert run_state.read_state(tmp_path) | {"updated": 0} == {
        "status": "running",
        "pid": 1,
        "attempts": 2,
        "updated": 0,
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep_state.json"]
    (tmp_path / "results.json").write_text('{"best": ')  # being written: not done yet
    assert run_dir.read_json(tmp_path / "results.json") is None


def test_results_count_only_once_they_reach_the_last_epoch(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"train": {"num_epochs": 3}}))
    results = {"epochs": [{"epoch": 0, "accuracy": 1.0}, {"epoch": 1, "accuracy": 2.0}]}
    (tmp_path / "results.json").write_text(json.dumps(results))
    assert not run_dir.results_complete(tmp_path)  # rewritten after every epoch
    assert run_state.run_status(tmp_path, 2)[0] == "pending"
    results["epochs"].append({"epoch": 2, "accuracy": 3.0})
    (tmp_path / "results.json").write_text(json.dumps(results))
    assert run_dir.results_complete(tmp_path)
    assert run_state.run_status(tmp_path, 2)[0] == "done"


FAKE_RSYNC = """#!/bin/bash
# gcloud storage rsync --recursive --exclude=REGEX SRC DST, with gs://bucket/ mapped to $FAKE_GS
[ "$1 $2 $3" = "storage rsync --recursive" ] || exit 9
exclude="${4#--exclude=}"; src="${5/gs:\\/\\/bucket/$FAKE_GS}"; dst="${6/gs:\\/\\/bucket/$FAKE_GS}"
[ -d "$src" ] || exit 1
mkdir -p "$dst"
(cd "$src" && find . -type f) | while read -r f; do
  if ! echo "${f#./}" | grep -Eq "$exclude"; then mkdir -p "$dst/$(dirname "$f")"; cp "$src/$f" "$dst/$f"; fi
done
"""


def test_staged_run_resumes_from_the_bucket_and_copies_back(tmp_path):
    """--stage_on_vm's shell line, run by bash with a fake `gcloud storage rsync` and the fake
    train command standing in for the VM's."""
    from launch import hosts

    bucket_run = tmp_path / "gs" / "sweep" / "runs" / "r1"
    bucket_run.mkdir(parents=True)
    (bucket_run / "checkpoint.json").write_text('{"step": 2}')  # an earlier, preempted attempt
    (bucket_run / "sweep_state.json").write_text('{"status": "running", "attempts": 2}')
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gcloud").write_text(FAKE_RSYNC)
    (bin_dir / "gcloud").chmod(0o755)
    (bin_dir / "python3").symlink_to(sys.executable)
    argv = [
        "python3",
        str(REPO_ROOT / "tests" / "launch" / "fake_train.py"),
        "--config=configs/paper.py:multiarith,ft,gpt2,0",
        "--workdir=gs://bucket/sweep/runs/r1",
        "--config.fake_steps=4",
    ]
    line = hosts.staged_run_command(argv, "r1", str(REPO_ROOT))
    env = dict(
        os.environ, HOME=str(tmp_path / "home"), FAKE_GS=str(tmp_path / "gs"), PATH=f"{bin_dir}:{os.environ['PATH']}"
    )
    done = subprocess.run(["bash", "-c", line], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads((bucket_run / "checkpoint.json").read_text()) == {"step": 4}
    assert starts(bucket_run) == [2]  # resumed from the bucket's checkpoint
    assert run_dir.results_complete(bucket_run)
    assert json.loads((bucket_run / "sweep_state.json").read_text())["attempts"] == 2  # untouched
    failing = hosts.staged_run_command(argv + ["--config.fake_fail=1"], "r1", str(REPO_ROOT))
    assert subprocess.run(["bash", "-c", failing], env=env).returncode == 1  # status kept
    assert starts(bucket_run) == [2, 4]  # copied back even when the run failed


def test_runs_differing_in_an_override_get_their_own_workdirs():
    cfg = load_sweep("diverse_reasoning")
    cfg.tasks, cfg.students, cfg.num_rationales = ("multiarith",), ("gpt2",), (1,)
    cfg.grids = [
        {"overrides": {"train": {"learning_rate": 1e-4}}},
        {"overrides": {"train": {"learning_rate": 3e-5}}},
        {"overrides": {"train": {"learning_rate": 1e-4}}},  # the same run again: planned once
        {"overrides": {"train": {"learning_rate": 3e-4}}},  # the run config's own value: the plain run
    ]
    names = [r.name for r in grid.expand(cfg)]
    assert names == [
        "multiarith__gpt2__ft_cot_t70_1aug__seed0__train.learning_rate=0.0001",
        "multiarith__gpt2__ft_cot_t70_1aug__seed0__train.learning_rate=3e-05",
        "multiarith__gpt2__ft_cot_t70_1aug__seed0",
    ]
    cfg.grids = []
    cfg.axes = {"train": {"learning_rate": (1e-4, 3e-5), "batch_size": (8, 16)}, "teacher": ("a/b c",)}
    runs = grid.expand(cfg)
    assert len({r.name for r in runs}) == 4  # 2 x 2 (batch size 8 is the default: not in the name)
    assert all(r.name.split("__")[-1].startswith("h") for r in runs)  # "a/b c" is no file name: hashed
    assert {dict(r.overrides)["train.learning_rate"] for r in runs} == {"0.0001", "3e-05"}
    # where the data lives and run control are passed on, but no part of the name
    cfg.axes = {}
    cfg.overrides = {"data_dir": "/my/data", "train": {"max_steps": 5}}
    (run,) = grid.expand(cfg)
    assert run.name == "multiarith__gpt2__ft_cot_t70_1aug__seed0"
    assert grid.command_for(run, cfg, "/w")[-2:] == ["--config.data_dir=/my/data", "--config.train.max_steps=5"]
    assert run.identity("paper")["overrides"] == {"data_dir": "/my/data"}


def test_an_override_field_the_run_config_lacks_is_named_with_its_grid():
    cfg = load_sweep("diverse_reasoning")
    cfg.grids = [{}, {"axes": {"train.learning_rat": (1e-4, 3e-4)}}]
    with pytest.raises(UserError, match=r"grids\[1\]: field 'train.learning_rat' is not in the run config"):
        grid.expand(cfg)


def test_a_root_planned_by_another_sweep_with_the_same_names_is_refused(tmp_path):
    root = tmp_path / "root"
    config = write_sweep_config(tmp_path / "s.py", root, train_config="paper")
    assert run_cli("sweep", f"--sweep={config}", "--poll_seconds=0.05", "--noreport").returncode == 0
    index = json.loads((root / grid.INDEX_FILE).read_text())
    assert index["runs"]["multiarith__gpt2__ft_cot__seed0"]["train_config"] == "paper"
    other = write_sweep_config(tmp_path / "t.py", root, train_config=str(configs.path("paper")))
    done = run_cli("sweep", f"--sweep={other}", "--poll_seconds=0.05", "--noreport")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: {root}/{grid.INDEX_FILE}: run multiarith__gpt2__ft_cot__seed0 was planned there by an earlier "
        "sweep with another config (differs in train_config); use a new sweep root"
    ]
    status = json.loads(run_cli("sweep", f"--sweep={config}", "--status", "--json").stdout)
    assert status["summary"]["done"] == 1 and status["summary"]["total"] == 1
    assert status["runs"][0]["name"] == "multiarith__gpt2__ft_cot__seed0" and status["runs"][0]["status"] == "done"


ABLATIONS = {  # packaged sweep -> (runs, the axis field, its values in the run names/commands)
    "dataset_size": (4 * 3 * 3 * 4, "max_train_examples", {"8", "32", "128", None}),
    "rationale_filter": (4 * 3 * 2 * 3, "rationale_filter", {None, "all", "none_gold"}),
    "stability": (4 * 3 * 3 * 3, None, None),
    "diverse_reasoning_open": (4 * 3 * (2 + 7), None, None),
    "hyperparameters": (4 * 3 * (9 + 3 - 1), "train.learning_rate", {"0.0001", None, "0.001"}),
    "teachers": (4 * 3 * (2 * 2 + 3 - 1), "teacher", {None, "llama-3.1-70b"}),
}


@pytest.mark.parametrize("name", sorted(ABLATIONS))
def test_ablation_sweeps_plan_one_run_per_combination(name, tmp_path):
    count, field, values = ABLATIONS[name]
    cfg = load_sweep(name)
    runs = grid.expand(cfg)
    assert len(runs) == count == len({r.name for r in runs})
    assert {r.student for r in runs} == {"smollm2-135m", "qwen2.5-0.5b", "llama-3.2-1b"}
    if field:
        assert {dict(r.overrides).get(field) for r in runs} == values
        run = next(r for r in runs if dict(r.overrides).get(field))
        value = dict(run.overrides)[field]
        assert f"{field}={value}" in run.name
        assert f"--config.{field}={value}" in grid.command_for(run, cfg, "/w")
    if name == "stability":
        assert {r.seed for r in runs} == {0, 1, 2}
    if name == "diverse_reasoning_open":
        assert {methods.degree(r.method) for r in runs} == {None, 1, 2, 4, 8, 16, 32, 64}


def test_ablation_sweep_dry_run_from_the_command_line(tmp_path):
    root = tmp_path / "root"
    done = run_cli("sweep", "--sweep=sweeps/dataset_size", f"--sweep.root={root}", "--dry_run")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"sweep dataset_size: 144 runs in {root}/runs")
    assert (
        f"--config=paper:multiarith,ft,smollm2-135m,0 --workdir={root}/runs/"
        "multiarith__smollm2-135m__ft__seed0__max_train_examples=8 --config.max_train_examples=8"
    ) in done.stdout
    assert not root.exists()  # a dry run writes nothing


def test_a_sweep_of_two_learning_rates_trains_two_runs_and_reports_two_rows(tmp_path):
    root = tmp_path / "root"
    config = write_sweep_config(tmp_path / "s.py", root, axes={"train": {"learning_rate": (1e-4, 3e-5)}})
    done = run_cli("sweep", f"--sweep={config}", "--poll_seconds=0.05")
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (root / "runs").iterdir()) == [
        "multiarith__gpt2__ft_cot__seed0__train.learning_rate=0.0001",
        "multiarith__gpt2__ft_cot__seed0__train.learning_rate=3e-05",
    ]
    table = (root / "report" / "report.md").read_text()
    assert "| ft_cot [train.learning_rate=0.0001] | gpt2 (124M) |" in table
    assert "| ft_cot [train.learning_rate=3e-05] | gpt2 (124M) |" in table
