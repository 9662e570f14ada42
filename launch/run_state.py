"""Per-run state files of a sweep: what the launcher knows about each run, written atomically.

`<workdir>/sweep_state.json` holds {status, attempts, failures, host, pid, slot, log, command,
started, finished, exit_status}. Whether a run is done is decided by its results.json (written
by the train command) reaching the last epoch, so a run finished by hand, or by another sweep,
counts as done too.
"""

import json
import os
import socket
import time

from etils import epath

STATE_FILE = "sweep_state.json"
RESULTS_FILE = "results.json"
CONFIG_FILE = "config.json"  # the train command's config snapshot
# What --status shows. "interrupted" runs (the launcher died) are started again like pending ones.
STATUSES = ("done", "running", "failed", "interrupted", "pending")


def read_json(path: epath.Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except json.JSONDecodeError:
        return None  # a results.json being written right now: not done yet


def write_json_atomic(path: epath.Path, data: dict) -> None:
    """Readers see the old or the new file, never half of one (a local rename is atomic)."""
    tmp = path.parent / f".{path.name}.{socket.gethostname()}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    tmp.replace(path)


def results_complete(workdir: epath.Path) -> bool:
    """results.json is there and covers the last epoch of the run's config.json (the train
    command rewrites results.json after every epoch, so its presence alone is not enough)."""
    results = read_json(workdir / RESULTS_FILE)
    if results is None:
        return False
    config = read_json(workdir / CONFIG_FILE) or {}
    num_epochs = (config.get("train") or {}).get("num_epochs")
    if not isinstance(num_epochs, int) or num_epochs <= 0:
        return True  # no snapshot, or an evaluation-only run: its results are final
    return any(e.get("epoch") == num_epochs - 1 for e in results.get("epochs") or [])


def read_state(workdir: epath.Path) -> dict:
    return read_json(workdir / STATE_FILE) or {}


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
    if status != "interrupted" and results_complete(workdir):
        return "done", state
    if status == "interrupted":
        return "interrupted", state
    if state.get("failures", 0) >= max_attempts:
        return "failed", state
    return "pending", state
