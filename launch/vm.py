r"""Create, set up, use and delete a TPU VM (or pod slice) or a GPU VM with the gcloud CLI.

  python -m launch.vm ACTION --name=NAME --zone=ZONE [flags]

ACTION is one of:
  create   make the VM: on-demand, --spot, or through a --queued resource (TPU)
  watch    wait until the VM (or queued resource) is ready, printing each state change
  sync     copy this checkout (files git tracks or does not ignore) to every worker
  install  sync, then `pip install -e .[tpu|gpu]` on every worker
  run      run --command in the synced checkout on every worker at once, one log per worker
           (a multi-host slice runs the same training command on all workers, and
           jax.distributed.initialize() finds the others)
  delete   delete the VM (and its queued resource)

Every gcloud command is printed before it runs; --dry_run only prints them.
"""

import json
import os
import pathlib
import re
import subprocess
import sys
import tarfile
import tempfile
import time

from absl import flags

from launch import hosts
from launch.shell import Shell, find_binary
from rt_jax.cli import run_main
from rt_jax.errors import UserError

ACTIONS = ("create", "watch", "sync", "install", "run", "delete")
REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]

DURATION_RE = re.compile(r"(\d+[dhms])+")

FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_enum("platform", "tpu", sorted(hosts.PLATFORMS), "Kind of host.")
    flags.DEFINE_string("name", None, "VM (TPU node) name.")
    flags.DEFINE_string("zone", None, "Compute Engine zone, e.g. us-central2-b.")
    flags.DEFINE_string("project", "", "Google Cloud project (default: gcloud's).")
    flags.DEFINE_string("accelerator_type", None, "create: TPU type (v4-8, v5litepod-16, ...) or GPU type (nvidia-l4).")
    flags.DEFINE_string("runtime_version", "", "create (TPU): software version; default matches the TPU generation.")
    flags.DEFINE_bool("spot", False, "create: spot (preemptible) capacity.")
    flags.DEFINE_bool("queued", False, "TPU: create and delete through a queued resource.")
    flags.DEFINE_string("valid_until", "", "create --queued: give up waiting after this long, e.g. 6h.")
    flags.DEFINE_string("machine_type", "", "create (GPU): machine type, e.g. g2-standard-8.")
    flags.DEFINE_integer("gpu_count", 1, "create (GPU): GPUs on the VM.")
    flags.DEFINE_string("image_family", "", "create (GPU): Deep Learning VM image family.")
    flags.DEFINE_string("repo_dir", str(REPO_ROOT), "sync: local checkout to copy.")
    flags.DEFINE_string("remote_dir", "rt_jax", "Checkout directory on the workers.")
    flags.DEFINE_string("command", None, "run: shell command, run in --remote_dir.")
    flags.DEFINE_integer("num_workers", 0, "run: hosts in the slice (0: ask gcloud describe).")
    flags.DEFINE_string("worker_logs", "launch_logs", "run: per-worker logs go to WORKER_LOGS/NAME/worker<i>.log.")
    flags.DEFINE_float("poll_seconds", 30.0, "watch: seconds between state checks.")
    flags.DEFINE_float("timeout_s", 3600.0, "watch: give up after this many seconds.")
    flags.DEFINE_string("gcloud", "gcloud", "gcloud executable.")
    flags.DEFINE_bool("dry_run", False, "Print the commands without running them.")


FAILED_STATES = {"FAILED", "SUSPENDED", "PREEMPTED", "TERMINATED", "STOPPED"}


def pack_checkout(repo_dir: str, out_path: str) -> int:
    """Writes a .tar.gz of the files git tracks or does not ignore; returns how many."""
    listing = subprocess.run(
        ["git", "-C", repo_dir, "ls-files", "-z", "-co", "--exclude-standard"], capture_output=True
    )
    if listing.returncode != 0:
        raise UserError(f"--repo_dir={repo_dir}: not a git checkout ({listing.stderr.decode().strip()})")
    names = [n for n in listing.stdout.decode().split("\0") if n and os.path.isfile(os.path.join(repo_dir, n))]
    with tarfile.open(out_path, "w:gz") as tar:
        for name in names:
            tar.add(os.path.join(repo_dir, name), arcname=name)
    return len(names)


def sync(host, shell: Shell) -> None:
    if shell.dry_run:
        archive = "/tmp/rt_jax_code.tar.gz"
        print(f"# would pack the files git tracks or does not ignore in {FLAGS.repo_dir} into {archive}", flush=True)
    else:
        archive = os.path.join(tempfile.mkdtemp(prefix="rt_jax_sync_"), "rt_jax_code.tar.gz")
        count = pack_checkout(FLAGS.repo_dir, archive)
        print(f"# packed {count} files of {FLAGS.repo_dir} into {archive}", flush=True)
    remote = FLAGS.remote_dir
    shell.run(host.scp(archive, "rt_jax_code.tar.gz"))
    shell.run(host.ssh(f"mkdir -p {remote} && tar -xzf rt_jax_code.tar.gz -C {remote} && rm rt_jax_code.tar.gz"))


def install(host, shell: Shell) -> None:
    sync(host, shell)
    shell.run(
        host.ssh(
            f"cd {FLAGS.remote_dir} && python3 -m pip install -U pip && "
            f"python3 -m pip install -e '.[{host.install_extra}]'"
        )
    )


def count_workers(host, shell: Shell) -> int:
    if FLAGS.num_workers:
        return FLAGS.num_workers
    if shell.dry_run:
        shell.show(host.describe())
        print("# dry run: assuming 1 worker (pass --num_workers for a pod slice)", flush=True)
        return 1
    try:
        described = json.loads(shell.run(host.describe(), capture=True))
    except json.JSONDecodeError as e:
        raise UserError(f"gcloud describe of {host.name} gave no JSON ({e}); pass --num_workers")
    return host.count_workers(described)


def run_on_workers(host, shell: Shell) -> int:
    if not FLAGS.command:
        raise UserError("run needs --command='...' (the shell command for every worker)")
    workers = count_workers(host, shell)
    remote_command = f"cd {FLAGS.remote_dir} && {FLAGS.command}"
    log_dir = os.path.join(FLAGS.worker_logs, host.name)
    jobs = [(host.ssh(remote_command, worker=str(i)), os.path.join(log_dir, f"worker{i}.log")) for i in range(workers)]
    statuses = shell.run_parallel(jobs)
    for i, status in enumerate(statuses):
        print(f"worker {i}: exit status {status}, log {jobs[i][1]}", flush=True)
    return 0 if all(s == 0 for s in statuses) else 1


def watch(host, shell: Shell) -> int:
    """Polls the state until ready (0), a failed state or the timeout (1)."""
    target = "ACTIVE" if host.queued else host.ready_state
    deadline = time.monotonic() + FLAGS.timeout_s
    last = None
    while True:
        state = shell.run(host.state(), check=False, capture=True).strip() or "UNKNOWN"
        if shell.dry_run:
            return 0
        if state != last:
            print(f"{time.strftime('%H:%M:%S')} {host.name}: {state}", flush=True)
            last = state
        if state == target:
            return 0
        if state in FAILED_STATES or time.monotonic() > deadline:
            print(f"{host.name} did not become {target} (last state {state})", file=sys.stderr)
            return 1
        time.sleep(FLAGS.poll_seconds)


def main(argv):
    if len(argv) != 2 or argv[1] not in ACTIONS:
        raise UserError(f"expected one action out of {', '.join(ACTIONS)}; got {argv[1:]}")
    action = argv[1]
    hosts.check_name(FLAGS.name)
    hosts.check_zone(FLAGS.zone)
    shell = Shell(FLAGS.dry_run)
    if FLAGS.dry_run:
        gcloud = FLAGS.gcloud
    else:
        gcloud = find_binary(FLAGS.gcloud)
    host = hosts.PLATFORMS[FLAGS.platform](gcloud, FLAGS.name, FLAGS.zone, FLAGS.project, FLAGS.queued)
    if FLAGS.valid_until and not DURATION_RE.fullmatch(FLAGS.valid_until):  # gcloud's duration format
        raise UserError(f"--valid_until={FLAGS.valid_until!r}: expected a duration such as 6h, 90m, 1d or 2h30m")
    if action == "create":
        command = host.create(
            FLAGS.accelerator_type,
            runtime_version=FLAGS.runtime_version,
            spot=FLAGS.spot,
            valid_until=FLAGS.valid_until,
            machine_type=FLAGS.machine_type,
            gpu_count=FLAGS.gpu_count,
            image_family=FLAGS.image_family,
        )
        shell.run(command)
    elif action == "watch":
        return watch(host, shell)
    elif action == "sync":
        sync(host, shell)
    elif action == "install":
        install(host, shell)
    elif action == "run":
        return run_on_workers(host, shell)
    elif action == "delete":
        shell.run(host.delete())
    return 0


if __name__ == "__main__":
    run_main(main, define_flags)
