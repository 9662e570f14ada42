r"""Run a sweep of training runs: locally (N at a time) or dispatched to TPU VMs.

  python -m launch.sweep --sweep=sweeps/diverse_reasoning [--sweep.root=gs://b/x]
      [--dry_run | --status] [--parallel=N] [--tpu_vms=vm1,vm2 --zone=Z]

Each run (task x student x method x D x seed) trains in its own workdir, <root>/runs/<name>.
Idempotent: a run whose results.json exists is skipped; an interrupted run starts again with
the same workdir, so the train command resumes from its last checkpoint; a failed run is retried
until it has failed max_attempts times, then reported. Killing the launcher (Ctrl-C, SIGTERM)
stops its runs and marks them interrupted; run it again to carry on.
"""

import concurrent.futures
import dataclasses
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time

from absl import flags
from etils import epath
from ml_collections import config_flags

from launch import grid, hosts, run_state
from launch.shell import find_binary
from rt_jax import run_dir
from rt_jax.cli import run_main
from rt_jax.errors import UserError

FLAGS = flags.FLAGS


def define_flags() -> None:
    config_flags.DEFINE_config_file(
        "sweep", None, "Sweep config: a file, or packaged: sweeps/paper, sweeps/diverse_reasoning."
    )
    flags.DEFINE_bool("dry_run", False, "Print the plan (runs and their commands) only.")
    flags.DEFINE_bool(
        "status", False, "Print a summary line (done/running/failed/pending, ETA) and a line per run, then exit."
    )
    flags.DEFINE_bool("json", False, "With --status: print the summary and the runs as one JSON object instead.")
    flags.DEFINE_string("only", "", "Only runs whose name matches this regular expression.")
    flags.DEFINE_integer("parallel", 0, "Local runs at a time (0: the config's `parallel`).")
    flags.DEFINE_bool("retry_failed", False, "Give failed runs max_attempts more tries.")
    flags.DEFINE_string(
        "run_logs",
        "",
        "Local directory of run logs (default: <root>/logs, or ./sweep_logs/<name> when root is on gs://).",
    )
    flags.DEFINE_list(
        "tpu_vms",
        [],
        "Dispatch runs to these TPU VMs, one run per VM at a time (all workers of a slice run it); needs a gs:// root.",
    )
    flags.DEFINE_string("zone", "", "Zone of --tpu_vms.")
    flags.DEFINE_string("project", "", "Project of --tpu_vms.")
    flags.DEFINE_string("remote_dir", "rt_jax", "Checkout on the VMs (launch.vm sync).")
    flags.DEFINE_string("gcloud", "gcloud", "gcloud executable (with --tpu_vms).")
    flags.DEFINE_bool(
        "stage_on_vm",
        False,
        "With --tpu_vms on single-host VMs: train in a local workdir on the VM "
        "and copy it from / to the run's gs:// directory around each attempt (only for a custom train "
        "command that cannot write gs://; rt_jax.train writes gs:// itself. Progress since the attempt "
        "began is lost on preemption).",
    )
    flags.DEFINE_bool("report", True, "When every run is done, run the config's report command.")
    flags.DEFINE_float("poll_seconds", 1.0, "Seconds between checks on running runs.")


@dataclasses.dataclass
class Active:
    run: grid.Run
    workdir: epath.Path
    slot: str
    proc: subprocess.Popen | None  # None: a run left running by an earlier launcher
    pid: int


class Sweep:
    """The plan of a sweep config and the state of each of its runs."""

    def __init__(self, cfg, only: str = ""):
        self.cfg = cfg
        if not cfg.get("root"):
            raise UserError(
                "sweep config: `root` is empty; expected the sweep directory "
                "(local path or gs://bucket/path), e.g. --sweep.root=gs://my-bucket/sweeps/x"
            )
        self.root = epath.Path(cfg.root)
        runs = grid.expand(cfg)
        if only:
            try:
                pattern = re.compile(only)
            except re.error as e:
                raise UserError(f"--only={only!r}: not a regular expression ({e})") from None
            runs = [r for r in runs if pattern.search(r.name)]
        self.runs = runs
        self.max_attempts = int(cfg.get("max_attempts", 2))

    def workdir(self, run: grid.Run) -> epath.Path:
        return self.root / "runs" / run.name

    def check_index(self) -> None:
        """Refuses a root whose sweep_runs.json gives one of our names another identity, else
        records our runs there (before any starts)."""
        file = self.root / grid.INDEX_FILE
        try:
            index = grid.check_index(run_dir.read_json(file), self.runs, self.cfg.train_config, self.root)
        except OSError as e:
            raise UserError(
                f"sweep root {self.root}: cannot read {grid.INDEX_FILE} ({type(e).__name__}: {e})"
            ) from None
        run_state.write_json_atomic(file, index)

    def statuses(self) -> list[tuple[grid.Run, str, dict]]:
        def one(run):
            return (run, *run_state.run_status(self.workdir(run), self.max_attempts))

        try:
            if not os.fspath(self.root).startswith("gs://"):
                return list(map(one, self.runs))  # local reads: threads would only add overhead
            with concurrent.futures.ThreadPoolExecutor(16) as pool:  # on gs:// each read is a round trip
                return list(pool.map(one, self.runs))
        except (OSError, ImportError) as e:  # no bucket, no permission, no gcsfs
            raise UserError(f"sweep root {self.root}: cannot read run states ({type(e).__name__}: {e})") from None

    def check_root_writable(self) -> None:
        """An unreachable bucket or unwritable directory fails here, before any run starts."""
        probe = self.root / f".probe.{socket.gethostname()}.{os.getpid()}"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe.write_text("ok")
            probe.unlink()
        except Exception as e:  # any backend error (permissions, no bucket, no network)
            raise UserError(f"sweep root {self.root}: cannot write there ({type(e).__name__}: {e})") from None


def best_accuracy(workdir: epath.Path) -> str:
    results = run_dir.read_json(workdir / run_dir.RESULTS_FILE) or {}
    best = results.get("best") or {}
    return f"{best['accuracy']:.2f}" if isinstance(best.get("accuracy"), (int, float)) else "-"


def summary(rows, parallel: int) -> dict:
    """Counts per status and the ETA: the mean wall time of finished runs (their state files'
    started/finished) times the runs left, over the slots."""
    counts = {s: 0 for s in run_state.STATUSES}
    walls = []
    for _, status, state in rows:
        counts[status] += 1
        if status == "done" and isinstance(state.get("started"), (int, float)) and state.get("finished"):
            walls.append(state["finished"] - state["started"])
    left = counts["running"] + counts["pending"] + counts["interrupted"]
    mean = sum(walls) / len(walls) if walls else None
    eta = None if mean is None else mean * left / max(1, parallel)
    return {**counts, "total": len(rows), "mean_run_s": mean, "eta_s": eta}


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown (no finished run timed yet)"
    hours, rest = divmod(int(round(seconds)), 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def summary_line(s: dict) -> str:
    counts = ", ".join(f"{k} {s[k]}" for k in run_state.STATUSES)
    return f"{counts} (of {s['total']} runs); ETA {_duration(s['eta_s'])}"


def print_status(sweep: Sweep, out=sys.stdout, as_json: bool = False, parallel: int = 1) -> dict[str, int]:
    """The summary line, then one line per run (status reads state files and results.json only)."""
    rows = sweep.statuses()
    s = summary(rows, parallel)
    if as_json:
        runs = [
            {"name": r.name, "status": st, "attempts": state.get("attempts", 0), "workdir": os.fspath(sweep.workdir(r))}
            for r, st, state in rows
        ]
        print(json.dumps({"summary": s, "runs": runs}, indent=1), file=out)
        return s
    print(summary_line(s), file=out)
    print(f"{'status':<12} {'tries':>5} {'best':>6}  run", file=out)
    for run, status, state in rows:
        best = (state.get("best") or best_accuracy(sweep.workdir(run))) if status == "done" else "-"
        print(f"{status:<12} {state.get('attempts', 0):>5} {best:>6}  {run.name}", file=out)
    return s


class Launcher:
    """Starts runs in free slots, watches them, and records each step in the run's state file."""

    def __init__(self, sweep: Sweep, slots: list[str], wrap, log_dir: str, poll: float):
        self.sweep, self.slots, self.wrap, self.log_dir, self.poll = sweep, slots, wrap, log_dir, poll
        self.active: list[Active] = []
        self.stopping = False

    def _start(self, run: grid.Run, slot: str) -> None:
        workdir = self.sweep.workdir(run)
        state = run_state.read_state(workdir)
        attempt = state.get("attempts", 0) + 1
        argv = self.wrap(grid.command_for(run, self.sweep.cfg, os.fspath(workdir)), slot, run.name)
        log_path = os.path.join(self.log_dir, f"{run.name}.attempt{attempt}.log")
        os.makedirs(self.log_dir, exist_ok=True)
        print(f"start  {run.name} (attempt {attempt}, {slot}) log {log_path}", flush=True)
        with open(log_path, "ab") as log:
            log.write(f"+ {shlex.join(argv)}\n".encode())
            log.flush()
            # Own session: a Ctrl-C reaches the launcher only, which then stops its runs cleanly.
            proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
            )
        run_state.write_state(
            workdir,
            status="running",
            attempts=attempt,
            pid=proc.pid,
            host=socket.gethostname(),
            slot=slot,
            log=log_path,
            command=argv,
            started=time.time(),
        )
        self.active.append(Active(run, workdir, slot, proc, proc.pid))

    def _finish(self, a: Active, exit_status: int | None) -> None:
        has_results = run_dir.results_complete(a.workdir)
        state = run_state.read_state(a.workdir)
        if has_results and exit_status in (0, None):
            run_state.write_state(
                a.workdir, status="done", exit_status=exit_status, finished=time.time(), best=best_accuracy(a.workdir)
            )
            print(f"done   {a.run.name}", flush=True)
            return
        if exit_status is None:  # an earlier launcher's run ended unseen: just run it again
            run_state.write_state(a.workdir, status="interrupted", finished=time.time())
            return
        failures = state.get("failures", 0) + 1
        status = "failed" if failures >= self.sweep.max_attempts else "retry"
        why = f"exit status {exit_status}" + (
            "" if has_results or exit_status else ", results.json missing or short of the last epoch"
        )
        run_state.write_state(
            a.workdir, status=status, failures=failures, exit_status=exit_status, finished=time.time()
        )
        print(
            f"{status:<6} {a.run.name} ({why}; failure {failures} of {self.sweep.max_attempts}; "
            f"log {state.get('log')})",
            flush=True,
        )

    def stop(self, *_):
        self.stopping = True

    def _interrupt_all(self) -> None:
        for a in self.active:
            if a.proc is not None and a.proc.poll() is None:
                os.killpg(a.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        for a in self.active:
            if a.proc is None:
                continue
            try:
                a.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(a.proc.pid, signal.SIGKILL)
                a.proc.wait()
            if a.proc.returncode == 0:  # it ended on its own just before the stop
                self._finish(a, 0)
                continue
            run_state.write_state(a.workdir, status="interrupted", finished=time.time())
            print(f"interrupted {a.run.name}", flush=True)

    def _poll(self) -> bool:
        """Waits one poll interval; records the runs that ended. True if any did."""
        time.sleep(self.poll)
        ended = False
        for a in list(self.active):
            if a.proc is not None and a.proc.poll() is not None:
                self.active.remove(a)
                self._finish(a, a.proc.returncode)
                ended = True
            elif a.proc is None and not run_state.pid_alive(a.pid):
                self.active.remove(a)
                self._finish(a, None)
                ended = True
        return ended

    def run(self) -> int:
        """Runs everything not done; returns how many runs are not done at the end."""
        old_handlers = {s: signal.signal(s, self.stop) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            changed = True
            while not self.stopping:
                if not changed:  # nothing ended: no need to read every state file again
                    changed = self._poll()
                    continue
                rows = self.sweep.statuses()
                busy = {a.run.name for a in self.active}
                for run, status, state in rows:  # adopt runs an earlier launcher left running
                    if status == "running" and run.name not in busy and state.get("slot") in self.slots:
                        self.active.append(Active(run, self.sweep.workdir(run), state["slot"], None, int(state["pid"])))
                        busy.add(run.name)
                        print(f"adopt  {run.name} (pid {state['pid']} still running)", flush=True)
                todo = [r for r, s, _ in rows if s in ("pending", "interrupted") and r.name not in busy]
                free = [s for s in self.slots if s not in {a.slot for a in self.active}]
                for run, slot in zip(todo, free):
                    self._start(run, slot)
                if not self.active:
                    break
                changed = self._poll()
            if self.stopping:
                self._interrupt_all()
                return -1
        finally:
            for s, h in old_handlers.items():
                signal.signal(s, h)
        return sum(1 for _, s, _ in self.sweep.statuses() if s != "done")


def report_command(sweep: Sweep) -> list[str]:
    template = sweep.cfg.get("report_command", None) or (
        "{python}",
        "-m",
        "rt_jax.report",
        "--workdirs={root}/runs",
        "--out_dir={root}/report",
        "--compare_paper",
    )
    return [str(p).format(python=sys.executable, root=os.fspath(sweep.root)) for p in template]


def make_slots(sweep: Sweep, parallel: int):
    """(slot names, wrap(argv, slot) -> argv): local process slots or one slot per TPU VM."""
    if not FLAGS.tpu_vms:
        if parallel < 1:
            raise UserError(f"--parallel={parallel}: expected at least 1")
        return [f"local{i}" for i in range(parallel)], lambda argv, slot, name: argv
    if not os.fspath(sweep.root).startswith("gs://"):
        raise UserError(
            f"--tpu_vms needs a sweep root on Cloud Storage (gs://...), where the "
            f"VMs write and this launcher reads; got {sweep.root}"
        )
    hosts.check_zone(FLAGS.zone)
    for name in FLAGS.tpu_vms:
        hosts.check_name(name)
    gcloud = FLAGS.gcloud if FLAGS.dry_run else find_binary(FLAGS.gcloud)
    vms = {name: hosts.TpuVm(gcloud, name, FLAGS.zone, FLAGS.project) for name in FLAGS.tpu_vms}

    def wrap(argv, slot, name):  # every worker of the slice runs the same command
        argv = ["python3" if a == sys.executable else a for a in argv]
        if not FLAGS.stage_on_vm:
            return vms[slot].ssh(f"cd {FLAGS.remote_dir} && {shlex.join(argv)}")
        return vms[slot].ssh(hosts.staged_run_command(argv, name, FLAGS.remote_dir))

    return list(vms), wrap


def main(argv):
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {argv[1:]}; flags look like --name=value")
    if FLAGS.sweep is None:
        raise UserError("--sweep is required: a sweep config such as sweeps/diverse_reasoning")
    sweep = Sweep(FLAGS.sweep, FLAGS.only)
    parallel = FLAGS.parallel or int(FLAGS.sweep.get("parallel", 1))
    if FLAGS.status:
        print_status(sweep, as_json=FLAGS.json, parallel=parallel)
        return 0
    slots, wrap = make_slots(sweep, parallel)
    if FLAGS.dry_run:
        print(
            f"sweep {FLAGS.sweep.get('name', '')}: {len(sweep.runs)} runs in {sweep.root}/runs, "
            f"slots {', '.join(slots)}"
        )
        for run in sweep.runs:  # the plan only: reads no state (--status does)
            command = wrap(grid.command_for(run, sweep.cfg, os.fspath(sweep.workdir(run))), slots[0], run.name)
            print(f"{run.name}\n    {shlex.join(command)}")
        return 0
    sweep.check_root_writable()
    sweep.check_index()
    if FLAGS.retry_failed:
        for run, status, _ in sweep.statuses():
            if status == "failed":
                run_state.write_state(sweep.workdir(run), status="retry", failures=0)
    log_dir = FLAGS.run_logs or (
        os.path.join("sweep_logs", FLAGS.sweep.get("name", "sweep"))
        if os.fspath(sweep.root).startswith("gs://")
        else os.fspath(sweep.root / "logs")
    )
    left = Launcher(sweep, slots, wrap, log_dir, FLAGS.poll_seconds).run()
    counts = print_status(sweep, parallel=len(slots))
    if left < 0:
        print("stopped; run the same command again to carry on", file=sys.stderr)
        return 130
    if left:
        print(f"{left} runs not done (failed runs: see their logs; --retry_failed tries again)", file=sys.stderr)
        return 1
    if FLAGS.report and counts["done"]:
        command = report_command(sweep)
        print("+ " + shlex.join(command), flush=True)
        return subprocess.run(command).returncode
    return 0


if __name__ == "__main__":
    run_main(main, define_flags)
