"""launch.vm: the gcloud commands it prints (checked against the real gcloud's argument parser),
its bad-input errors, and what it does with the answers of a fake gcloud."""

import concurrent.futures
import os
import shlex
import shutil
import subprocess
import tarfile

import pytest
from launch_helpers import commands, run_cli

from launch import hosts

TPU = ("--name=rt-tpu", "--zone=us-central2-b", "--project=my-proj")


def dry(*args):
    done = run_cli("vm", *args, "--dry_run")
    assert done.returncode == 0, done.stderr
    return commands(done.stdout)


def test_help_lists_every_action():
    done = run_cli("vm", "--help")  # absl prints the usage and exits 1
    assert "Traceback" not in done.stderr
    for action in ("create", "watch", "sync", "install", "run", "delete", "--dry_run", "--queued"):
        assert action in done.stdout


def test_create_commands_on_demand_spot_queued_and_gpu():
    assert dry("create", *TPU, "--accelerator_type=v4-32") == [
        "gcloud compute tpus tpu-vm create rt-tpu --accelerator-type=v4-32 "
        "--version=tpu-ubuntu2204-base --zone=us-central2-b --project=my-proj"
    ]
    assert dry("create", *TPU, "--accelerator_type=v6e-8", "--spot")[0].endswith(
        "--version=v2-alpha-tpuv6e --zone=us-central2-b --project=my-proj --spot"
    )
    queued = dry("create", *TPU, "--accelerator_type=v5litepod-16", "--queued", "--spot", "--valid_until=6h")
    assert queued == [
        "gcloud compute tpus queued-resources create rt-tpu-qr --node-id=rt-tpu "
        "--accelerator-type=v5litepod-16 --runtime-version=v2-alpha-tpuv5-lite "
        "--zone=us-central2-b --project=my-proj --spot --valid-until-duration=6h"
    ]
    gpu = shlex.split(
        dry(
            "create",
            "--platform=gpu",
            "--name=rt-gpu",
            "--zone=us-central1-a",
            "--accelerator_type=nvidia-l4",
            "--machine_type=g2-standard-8",
            "--gpu_count=2",
            "--spot",
        )[0]
    )
    assert gpu[:5] == ["gcloud", "compute", "instances", "create", "rt-gpu"]
    assert "--accelerator=type=nvidia-l4,count=2" in gpu and "--provisioning-model=SPOT" in gpu


def test_install_syncs_then_pip_installs_on_every_worker():
    tpu = dry("install", *TPU)
    assert [shlex.split(c)[3:5] for c in tpu] == [["tpu-vm", "scp"], ["tpu-vm", "ssh"], ["tpu-vm", "ssh"]]
    assert all("--worker=all" in c for c in tpu)
    assert "tar -xzf rt_jax_code.tar.gz -C rt_jax" in tpu[1]
    assert "python3 -m pip install -e '\"'\"'.[tpu]'\"'\"'" in tpu[2]
    gpu = dry("install", "--platform=gpu", "--name=rt-gpu", "--zone=us-central1-a")
    assert [shlex.split(c)[2] for c in gpu] == ["scp", "ssh", "ssh"] and ".[gpu]" in gpu[2]


def test_run_prints_one_command_and_log_per_worker():
    done = run_cli(
        "vm", "run", *TPU, "--num_workers=4", "--command=python -m rt_jax.train", "--worker_logs=/tmp/logs", "--dry_run"
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("+ ")]
    assert len(lines) == 4
    for i, line in enumerate(lines):
        assert f"--worker={i}" in line and line.endswith(f"> /tmp/logs/rt-tpu/worker{i}.log 2>&1")
        assert "'--command=cd rt_jax && python -m rt_jax.train'" in line


def test_delete_and_watch_of_a_queued_resource():
    assert dry("delete", *TPU, "--queued") == [
        "gcloud compute tpus queued-resources delete rt-tpu-qr --zone=us-central2-b --project=my-proj --force --quiet"
    ]
    assert dry("watch", *TPU, "--queued") == [
        "gcloud compute tpus queued-resources describe rt-tpu-qr --zone=us-central2-b "
        "--project=my-proj '--format=value(state.state)'"
    ]


def _parse_with_real_gcloud(command: str, tmp_path) -> str:
    """gcloud parses its arguments before it needs credentials: with an empty configuration
    a well-formed command stops at 'no active account', a malformed one at the parser."""
    argv = shlex.split(command)
    argv[0] = shutil.which("gcloud")
    env = dict(
        os.environ,
        CLOUDSDK_CONFIG=str(tmp_path / "gcloud_config"),
        HOME=str(tmp_path),
        CLOUDSDK_CORE_DISABLE_PROMPTS="1",
    )
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    return done.stderr


@pytest.mark.slow  # ~1 s of gcloud start-up per command
def test_printed_commands_pass_the_real_gcloud_argument_parser(tmp_path):
    assert shutil.which("gcloud"), "the Google Cloud CLI (apt package google-cloud-cli) is needed"
    printed = (
        dry("create", *TPU, "--accelerator_type=v4-32", "--spot")
        + dry("create", *TPU, "--accelerator_type=v5p-16", "--queued", "--valid_until=6h")
        + dry(
            "create", "--platform=gpu", *TPU, "--accelerator_type=nvidia-l4", "--machine_type=g2-standard-8", "--spot"
        )
        + dry("install", *TPU)
        + dry("run", *TPU, "--num_workers=1", "--command=ls")
        + dry("watch", *TPU)
        + dry("watch", *TPU, "--queued")
        + dry("delete", *TPU)
        + dry("delete", *TPU, "--queued")
        + dry("delete", "--platform=gpu", *TPU)
    )
    printed = [c.split("  > ")[0] for c in printed]
    staged = hosts.staged_run_command(
        ["python3", "-m", "rt_jax.train", "--workdir=gs://b/runs/r"], "r", "rt_jax"
    )  # the sweep's --stage_on_vm line
    rsync = staged.split("{ ", 1)[1].split(" || true", 1)[0]  # the copy from the bucket
    assert rsync.startswith("gcloud storage rsync ")
    printed.append(rsync.replace("$HOME", str(tmp_path)))
    control = printed[0] + " --no-such-flag=1"  # proves the check can fail
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda c: _parse_with_real_gcloud(c, tmp_path), printed + [control]))
    for command, stderr in zip(printed, answers[:-1]):
        assert "do not currently have an active account" in stderr, (command, stderr)
    assert "unrecognized arguments: --no-such-flag=1" in answers[-1]


@pytest.mark.parametrize(
    "args, message",
    [
        (("reboot", *TPU), "expected one action out of create, watch"),
        (("create", "--name=Bad_Name", "--zone=us-central2-b", "--accelerator_type=v4-8"), "--name='Bad_Name'"),
        (("create", "--name=ok", "--zone=central", "--accelerator_type=v4-8"), "--zone='central'"),
        (("create", *TPU, "--accelerator_type=v9-8"), "--accelerator_type='v9-8': expected a TPU type"),
        (("create", *TPU, "--accelerator_type=v4-8", "--valid_until=2h"), "--valid_until applies only with --queued"),
        (
            ("create", *TPU, "--accelerator_type=v4-8", "--queued", "--valid_until=soon"),
            "--valid_until='soon': expected a duration such as 6h",
        ),
        (("create", "--platform=gpu", *TPU, "--accelerator_type=nvidia-l4"), "--machine_type is required"),
        (
            ("create", "--platform=gpu", *TPU, "--queued", "--accelerator_type=nvidia-l4"),
            "--queued applies only to TPU",
        ),
        (("run", *TPU), "run needs --command"),
        (("delete", *TPU, "--gcloud=/no/such/gcloud"), "--gcloud=/no/such/gcloud: executable not found"),
    ],
)
def test_bad_input_is_one_line_and_exit_2_before_any_command(args, message):
    done = run_cli("vm", *args)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and commands(done.stdout) == []


def test_run_asks_for_the_workers_and_keeps_one_log_per_worker(fake_gcloud, tmp_path):
    gcloud, env, calls = fake_gcloud
    done = run_cli(
        "vm",
        "run",
        *TPU,
        f"--gcloud={gcloud}",
        "--command=echo hi",
        f"--worker_logs={tmp_path}/logs",
        env=dict(env, FAKE_WORKERS="3", FAKE_FAIL_WORKER="1"),
    )
    assert done.returncode == 1  # worker 1 failed
    assert "worker 1: exit status 3" in done.stdout and "worker 2: exit status 0" in done.stdout
    assert calls()[0][3] == "describe" and len(calls()) == 4
    for i in range(3):
        log = (tmp_path / "logs" / "rt-tpu" / f"worker{i}.log").read_text()
        assert log == f"worker {i} ran: cd rt_jax && echo hi\n"


def test_watch_polls_until_ready_and_fails_on_preemption(fake_gcloud, tmp_path):
    gcloud, env, calls = fake_gcloud
    done = run_cli(
        "vm",
        "watch",
        *TPU,
        f"--gcloud={gcloud}",
        "--poll_seconds=0.01",
        env=dict(env, FAKE_STATES="CREATING,CREATING,READY"),
    )
    assert done.returncode == 0, done.stderr
    assert [line.split()[-1] for line in done.stdout.splitlines() if not line.startswith("+")] == ["CREATING", "READY"]
    assert len(calls()) == 3
    os.remove(env["FAKE_GCLOUD_LOG"] + ".polls")
    done = run_cli(
        "vm",
        "watch",
        *TPU,
        f"--gcloud={gcloud}",
        "--poll_seconds=0.01",
        env=dict(env, FAKE_STATES="CREATING,PREEMPTED"),
    )
    assert done.returncode == 1 and "did not become READY (last state PREEMPTED)" in done.stderr


def test_sync_ships_tracked_and_unignored_files_only(fake_gcloud, tmp_path):
    gcloud, env, calls = fake_gcloud
    repo = tmp_path / "repo"
    (repo / "pkg").mkdir(parents=True)
    for name, text in {
        ".gitignore": "*.log\n",
        "pkg/a.py": "a",
        "tracked.txt": "t",
        "untracked.py": "u",
        "debug.log": "ignored",
    }.items():
        (repo / name).write_text(text)
    git = ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run(git[:3] + ["init", "-q"], check=True)
    subprocess.run(git + ["add", ".gitignore", "pkg/a.py", "tracked.txt"], check=True)
    subprocess.run(git + ["commit", "-qm", "x"], check=True)
    done = run_cli("vm", "sync", *TPU, f"--gcloud={gcloud}", f"--repo_dir={repo}", "--remote_dir=code", env=env)
    assert done.returncode == 0, done.stderr
    with tarfile.open(env["FAKE_SCP_COPY"]) as tar:
        assert sorted(tar.getnames()) == [".gitignore", "pkg/a.py", "tracked.txt", "untracked.py"]
    ssh = calls()[1]
    assert (
        ssh[2:4] == ["tpu-vm", "ssh"]
        and "--command=mkdir -p code && tar -xzf rt_jax_code.tar.gz -C code && rm rt_jax_code.tar.gz" in ssh
    )


def test_worker_count_comes_from_the_network_endpoints():
    assert hosts.TpuVm.count_workers({"networkEndpoints": [{}, {}, {}, {}]}) == 4
    assert hosts.TpuVm.count_workers({}) == 1
    assert hosts.GpuVm.count_workers({"networkEndpoints": [{}, {}]}) == 1
