"""A run's workdir: its files, what makes two runs the same run, results.json, and its lock.

Train (`python -m rt_jax.train`) and evaluate (`python -m rt_jax.evaluate`) write a workdir; the
sweep launcher and the report read it. Every name below is the one place a file's name is kept.

    <workdir>/config.json          the config snapshot, written once by the first run there
    <workdir>/run.lock             held by the process running there (train, evaluate)
    <workdir>/results.json         accuracy per epoch, best, final, the run's identity (`results`)
    <workdir>/results_sc<N>.json   a self-consistency evaluation (rt_jax.evaluation)
    <workdir>/predictions/         completion records per epoch (rt_jax.evaluation.predictions);
                                   validation/ below it for the validation split
    <workdir>/metrics.jsonl, tensorboard/   training logs (rt_jax.train.metrics)
    <workdir>/checkpoints/<step>/  orbax checkpoints (rt_jax.train.checkpoint)
    <workdir>/checkpoints_damaged/<step>/   a damaged checkpoint a resume went back past

A workdir is a local folder or a bucket folder (`gs://...`, through rt_jax.train.storage).

Identity: every config field that changes what a run computes (data, model, method, teacher
data, hyperparameters, decoding, seed) is the run's identity; a workdir whose snapshot differs
in one of them belongs to another run and is refused, by training and evaluation alike. Run
control (RUN_CONTROL: how far a run goes, how often it logs and saves, which process of a
multi-host run this is) may differ between the segments of one run. A field missing on one side
(a snapshot written before the field existed, e.g. `teacher_method`) compares as the packaged
default of rt_jax/configs/base.py.

Best epoch: the highest accuracy, the earliest epoch among equals (`best`, `rank`); results.json
and the kept best checkpoint (rt_jax.train.checkpoint) use this one rule.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import socket
import tempfile
from typing import Any, Iterator, Sequence

import ml_collections
from etils import epath

from rt_jax.errors import UserError
from rt_jax.train import storage

CONFIG_FILE = "config.json"
RESULTS_FILE = "results.json"
RESULTS_GLOB = "results*.json"  # results.json and results_sc<N>.json
LOCK_FILE = "run.lock"
PREDICTIONS_DIR = "predictions"
VALIDATION_DIR = "validation"  # under PREDICTIONS_DIR
METRICS_FILE = "metrics.jsonl"
TENSORBOARD_DIR = "tensorboard"
CHECKPOINTS_DIR = "checkpoints"
DAMAGED_CHECKPOINTS_DIR = "checkpoints_damaged"

# Dotted config fields that steer how a run goes, not what it computes.
RUN_CONTROL = (
    "train.max_steps",
    "train.log_every_steps",
    "train.checkpoint_every_steps",
    "train.checkpoint_every_epochs",
    "train.keep_checkpoints",
    "data.bad_cache_lines",  # what to do about bad teacher-cache lines (training refuses by default)
    "distributed.process_id",  # each host of a multi-host run has its own
    "distributed.coordinator_address",  # a restarted slice may get a new one
)
_NAME_FIELDS = ("task", "method", "student", "seed")  # named by results.json itself, not an override
_MISSING = object()


def path(workdir: str | os.PathLike) -> epath.Path:
    """The workdir as an epath (local paths made absolute; gs:// kept)."""
    return storage.workdir_path(workdir)


def self_consistency_results_file(num_samples: int) -> str:
    return f"results_sc{num_samples}.json"


# ---- identity ---------------------------------------------------------------------------------


def _flat(tree: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def _as_json(config) -> dict:
    """A ConfigDict (or the dict of a snapshot) as config.json holds it."""
    if isinstance(config, dict):
        return config
    return json.loads(config.to_json_best_effort())


def identity(config) -> dict[str, Any]:
    """The config's identity fields, dotted (`train.learning_rate`) -> value as in config.json."""
    return {k: v for k, v in _flat(_as_json(config)).items() if k not in RUN_CONTROL}


def _base_defaults() -> dict[str, Any]:
    from rt_jax.configs import base

    return identity(base.get_config())


def differences(saved, config) -> list[tuple[str, Any, Any]]:
    """(field, saved value, this config's value) of every identity field the two differ in; a
    field one side lacks counts as base.py's default there (None when base.py lacks it too)."""
    a, b, defaults = identity(saved), identity(config), _base_defaults()
    out = []
    for key in sorted(set(a) | set(b), key=lambda k: ("." in k, k)):  # top-level fields first
        va, vb = a.get(key, defaults.get(key, _MISSING)), b.get(key, defaults.get(key, _MISSING))
        if va != vb:
            out.append((key, None if va is _MISSING else va, None if vb is _MISSING else vb))
    return out


def overrides(config) -> tuple[str, dict[str, Any]]:
    """(the packaged config this run is compared with, its identity fields that differ from it):
    `paper:<task>,<method>,<student>,<seed>` when the paper's grid has that run, else `base`."""
    from rt_jax.configs import base, paper

    c = _as_json(config)
    name = f"paper:{c.get('task')},{c.get('method')},{c.get('student')},{c.get('seed')}"
    try:
        reference = paper.get_config(name.partition(":")[2])
    except UserError:
        name, reference = "base", base.get_config()
    diff = differences(reference, config)
    return name, {key: value for key, _, value in diff if key not in _NAME_FIELDS}


# ---- checks before any work, the snapshot -----------------------------------------------------


def read_config(workdir) -> ml_collections.ConfigDict:
    """The config snapshot of `workdir` (a UserError when there is none or it is not JSON)."""
    file = path(workdir) / CONFIG_FILE
    if not file.exists():
        raise UserError(f"{file}: no config snapshot; expected a workdir written by python -m rt_jax.train")
    return ml_collections.ConfigDict(_read_snapshot(file))


def _read_snapshot(file: epath.Path) -> dict:
    try:
        snapshot = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise UserError(f"{file}:{e.lineno}: not valid JSON ({e.msg}); expected the config snapshot of a run") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{file}: cannot be read ({type(e).__name__}: {e})") from None
    if not isinstance(snapshot, dict):
        raise UserError(f"{file}: expected a JSON object (a config snapshot), got {type(snapshot).__name__}")
    return snapshot


def check_writable(folder, flag: str = "--workdir") -> None:
    """A local folder we may write in, or one we may create; a one-line UserError naming `flag`
    (the command's flag that gave `folder`) otherwise."""
    folder = epath.Path(folder)
    if folder.exists():
        if not folder.is_dir():
            raise UserError(f"{flag}={folder}: is a file; expected a folder (or a path to create one at)")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise UserError(f"{flag}={folder}: this user may not write in it; choose another {flag}")
        return
    parent = folder.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UserError(f"{flag}={folder}: cannot be created, {parent} is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UserError(f"{flag}={folder}: cannot be created, this user may not write in {parent}")


def check(config, workdir) -> None:
    """Before any work, writing nothing: the workdir can be written (local ones), and its config
    snapshot, if there is one, is readable and of this run. One-line UserErrors otherwise."""
    workdir = path(workdir)
    if storage.is_local(workdir):
        check_writable(workdir)
    file = workdir / CONFIG_FILE
    if not file.exists():
        return
    diff = differences(_read_snapshot(file), config)
    if diff:
        shown = "; ".join(f"{key}: {_shown(a)} there, {_shown(b)} here" for key, a, b in diff[:3])
        more = f"; and {len(diff) - 3} more" if len(diff) > 3 else ""
        raise UserError(
            f"{file}: this workdir belongs to a run with a different config ({shown}{more}); use a new --workdir"
        )


def _shown(value) -> str:
    return "absent" if value is None else repr(value)


def write_snapshot(config, workdir) -> None:
    """config.json, unless the workdir has one already (`check` said it is this run's)."""
    workdir = path(workdir)
    file = workdir / CONFIG_FILE
    if not file.exists():
        workdir.mkdir(parents=True, exist_ok=True)
        storage.write_text_atomic(file, config.to_json_best_effort(indent=2, sort_keys=True) + "\n")


# ---- the lock ---------------------------------------------------------------------------------


def _lock_file(workdir: epath.Path) -> str:
    if storage.is_local(workdir):
        return os.fspath(workdir / LOCK_FILE)
    # Buckets have no locks: runs on this machine lock a local file named after the workdir.
    folder = os.path.join(tempfile.gettempdir(), "rt_jax_workdir_locks")
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, hashlib.sha256(os.fspath(workdir).encode()).hexdigest()[:24] + ".lock")


@contextlib.contextmanager
def lock(workdir, enabled: bool = True) -> Iterator[None]:
    """Holds the workdir's lock (an exclusive flock, as the teacher cache's shard writers take):
    a second process gets a one-line UserError. The kernel drops the lock of a process that
    dies, so a lock file left by a killed run is simply taken over. A gs:// workdir is locked
    against processes of this machine only. `enabled=False` (the other hosts of a multi-host
    run, which share the chief's workdir) holds nothing."""
    if not enabled:
        yield
        return
    workdir = path(workdir)
    if storage.is_local(workdir):
        workdir.mkdir(parents=True, exist_ok=True)
    file = _lock_file(workdir)
    fd = os.open(file, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
            raise UserError(
                f"--workdir={workdir}: a run is already going on in it ({holder}, lock {file}); "
                "wait for it to end or use another --workdir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing drops the flock


# ---- results.json -----------------------------------------------------------------------------


def rank(accuracy: float, when: int) -> tuple[float, int]:
    """Sort key of an evaluation at `when` (its epoch, or the step of the checkpoint it scored):
    higher is better; among equal accuracies the earlier one."""
    return (accuracy, -when)


def best(epochs: Sequence[dict], key: str = "accuracy") -> dict | None:
    """The epoch with the highest `key` (earliest among equals); None when none has one."""
    scored = [e for e in epochs if e.get(key) is not None]
    return max(scored, key=lambda e: rank(e[key], e["epoch"])) if scored else None


def teacher_data(config, data=None) -> dict:
    """results.json's "teacher" (None for methods without rationales: which teacher id, cache
    method, D, cache folder, and how many of the cache's first-D rationales of the training
    questions were used or filtered out as incorrect) and "training_data" (examples and
    questions trained on). `data`: rt_jax.data.pipeline.TrainingData (or anything with its
    `pairs` and `rationale_counts`); without it the counts are unknown."""
    from rt_jax import methods

    pairs = getattr(data, "pairs", None)
    used = {} if pairs is None else {"examples": len(pairs), "questions": len({p.sample_index for p in pairs})}
    source = methods.rationale_source(config.method, config.get("teacher_method", ""))
    if source is None:
        return {"teacher": None, "training_data": used}
    counts = getattr(data, "rationale_counts", None) or {}
    teacher = {
        "name": config.teacher,
        "cache_method": source.teacher_method,
        "num_rationales": source.num_rationales,
        "cache_dir": str(config.teacher_cache_dir),
        "rationales_used": counts.get("used"),
        "rationales_filtered_out": counts.get("filtered_out"),
    }
    return {"teacher": teacher, "training_data": used}


def results(
    config,
    epochs: Sequence[dict],
    wall_time_s: float,
    *,
    teacher_data: dict | None = None,
    method: str | None = None,
    extra: dict | None = None,
) -> dict:
    """results.json: the run's identity (task, method, student, seed, split, teacher data, the
    packaged config it started from and its overrides), accuracy per epoch, best and final
    (accuracy in percent), wall time. `method` replaces config.method (self-consistency)."""
    scored = [e for e in epochs if e.get("accuracy") is not None]
    top = best(scored)
    defaults, changed = overrides(config)
    out = {
        "task": config.task,
        "method": method or config.method,
        "student": config.student,
        "seed": config.seed,
        "split": config.get("split", "default"),
        "teacher": None,
        "training_data": {},
        **(teacher_data or {}),
        "defaults": defaults,
        "overrides": changed,
        "epochs": list(epochs),
        "best": {"epoch": top["epoch"], "accuracy": top["accuracy"]} if top else None,
        "final": {"epoch": scored[-1]["epoch"], "accuracy": scored[-1]["accuracy"]} if scored else None,
        "wall_time_s": wall_time_s,  # all segments of a resumed run (up to their last checkpoint)
    }
    top_val = best(epochs, "validation_accuracy")
    if top_val:
        out["best_by_validation"] = {k: top_val[k] for k in ("epoch", "accuracy", "validation_accuracy")}
    out.update(extra or {})
    return out


def write_results(workdir, result: dict, name: str = RESULTS_FILE) -> epath.Path:
    """Writes `result` whole (readers never see half a file); returns its path."""
    file = path(workdir) / name
    storage.write_text_atomic(file, json.dumps(result, indent=2) + "\n")
    return file


def read_json(file: epath.Path) -> dict | None:
    """A small JSON file of a workdir; None when it is missing or being written right now."""
    try:
        return json.loads(file.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def results_complete(workdir) -> bool:
    """results.json is there and covers the last epoch of the run's config.json (training
    rewrites results.json after every epoch, so its presence alone is not enough)."""
    workdir = path(workdir)
    found = read_json(workdir / RESULTS_FILE)
    if found is None:
        return False
    config = read_json(workdir / CONFIG_FILE) or {}
    num_epochs = (config.get("train") or {}).get("num_epochs")
    if not isinstance(num_epochs, int) or num_epochs <= 0:
        return True  # no snapshot, or an evaluation-only run: its results are final
    return any(e.get("epoch") == num_epochs - 1 for e in found.get("epochs") or [])
