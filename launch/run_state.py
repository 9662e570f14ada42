"""Per-run state files of a sweep: what the launcher knows about each run, written atomically.

`<workdir>/sweep_state.json` holds {status, attempts, failures, host, pid, slot, log, command,
started, finished, exit_status, best (accuracy, once done)}.
Whether a run is done is decided by its results.json (written
by the train command) reaching the last epoch (rt_jax.run_dir.results_complete), so a run
finished by hand, or by another sweep, counts as done too.
"""

import json
import os
import socket
import time

from etils import epath

from rt_jax import run_dir

STATE_FILE = "sweep_state.json"
# What --status shows. "interrupted" runs (the launcher died) are started again like pending ones.
STATUSES = ("done", "running", "failed", "interrupted", "pending")


def write_json_atomic(path: epath.Path, data: dict) -> None:
    """Readers see the old or the new file, never half of one (a local rename is atomic)."""
    tmp = path.parent / f".{path.name}.{socket.gethostname()}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    tmp.replace(path)


def read_state(workdir: epath.Path) -> dict:
    return run_dir.read_json(workdir / STATE_FILE) or {}


def write_state(workdir: epath.Path, **fields) -> dict:
    workdir.mkdir(parents=True, exist_ok=True)
    state = read_state(workdir)
    state.update(fields, updated=time.time())
    write_json_atomic(workdir / STATE_FILE, state)
    return state


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (our own finished child not yet waited for) counts as dead.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def run_status(workdir: epath.Path, max_attempts: int) -> tuple[str, dict]:
    """(one of STATUSES, the state dict) of the run in `workdir`."""
    state = read_state(workdir)
    status = state.get("status")
    if status == "running":
        if state.get("host") != socket.gethostname() or pid_alive(int(state.get("pid", -1))):
            return "running", state
        status = "interrupted"
    if status == "done" and (workdir / run_dir.RESULTS_FILE).exists():
        return "done", state  # the launcher saw results.json complete; status reads no more
    if status != "interrupted" and run_dir.results_complete(workdir):
        return "done", state
    if status == "interrupted":
        return "interrupted", state
    if state.get("failures", 0) >= max_attempts:
        return "failed", state
    return "pending", state
