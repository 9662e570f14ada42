"""orbax checkpoints of a training run: the sharded train state plus a small JSON record
(epoch, position in the epoch, data-iterator state, RNG seed). Async saves; keeps the last K
and the best by eval accuracy (rt_jax.run_dir's rule: the earliest epoch among equals, as
results.json's "best"); restores onto any mesh by giving target shardings.

A saved step that does not restore (a truncated or missing file) is a `DamagedCheckpoint`.
Resuming (`restore_newest`) goes back to the newest step that restores and moves the newer,
damaged ones aside into run_dir.DAMAGED_CHECKPOINTS_DIR: never deleted, and out of the way of
the steps the resumed run saves again."""

from __future__ import annotations

import os
from typing import Any

import jax
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies

from rt_jax import run_dir
from rt_jax.errors import UserError
from rt_jax.train import storage
from rt_jax.train.state import TrainState

ACCURACY = "accuracy"
STEP = "step"  # kept beside the accuracy: equal accuracies go to the earlier step


class DamagedCheckpoint(UserError):
    """A saved step whose files do not restore."""


def _first_cause(error: BaseException) -> str:
    """The innermost cause's first line (tensorstore's own text: which file, what is wrong)."""
    while error.__cause__ is not None:
        error = error.__cause__
    text = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return text if len(text) <= 300 else text[:300] + "..."


def _rank(metrics: dict) -> tuple:
    # (checkpoints saved before the step was recorded there rank as step 0 among equals)
    return run_dir.rank(metrics[ACCURACY], metrics.get(STEP, 0))


class Checkpoints:
    """Checkpoints of one workdir: `<workdir>/checkpoints/<step>/{state,meta}` (a local folder or
    a gs:// one: orbax writes both through epath and tensorstore)."""

    def __init__(self, directory: str | os.PathLike, keep: int = 2, async_save: bool = True):
        keep_policy = policies.AnyPreservationPolicy(
            [
                policies.LatestN(n=max(int(keep), 1)),
                # the best evaluated checkpoint survives however old it is
                policies.BestN(get_metric_fn=_rank, n=1, keep_checkpoints_without_metrics=False),
            ]
        )
        # best_fn only makes orbax write and track the metrics; deletion follows keep_policy
        options = ocp.CheckpointManagerOptions(
            preservation_policy=keep_policy,
            create=True,
            best_fn=_rank,
            best_mode="max",
            enable_async_checkpointing=async_save,
        )
        self.directory = storage.workdir_path(directory)  # local or gs://
        self._manager = ocp.CheckpointManager(self.directory, item_names=("state", "meta"), options=options)

    def save(self, state: TrainState, meta: dict[str, Any], accuracy: float | None = None) -> bool:
        """Starts an async save at `state.step`; returns at once (device buffers are copied first).
        A step already saved is left as it is (never rewritten)."""
        step = int(jax.device_get(state.step))
        if step in self._manager.all_steps():
            return False
        metrics = None if accuracy is None else {ACCURACY: float(accuracy), STEP: step}
        return self._manager.save(
            step,
            args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)),
            metrics=metrics,
            force=True,
        )

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def best_step(self) -> int | None:
        """The kept step with the highest eval accuracy, the earliest among equals (None when
        none was evaluated)."""
        return self._manager.best_step()

    def all_steps(self) -> list[int]:
        return list(self._manager.all_steps())

    def restore(self, step: int, target: TrainState) -> tuple[TrainState, dict[str, Any]]:
        """`target`: a TrainState of jax.ShapeDtypeStruct with the shardings wanted now (any mesh).
        A DamagedCheckpoint when the step's files do not restore."""
        try:
            out = self._manager.restore(
                step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target), meta=ocp.args.JsonRestore())
            )
        except Exception as e:  # orbax and tensorstore raise ValueError, KeyError, OSError... for bad files
            raise DamagedCheckpoint(
                f"checkpoint step {step} in {self.directory} does not restore ({_first_cause(e)})"
            ) from None
        return out["state"], out["meta"]

    def restore_newest(self, target: TrainState, move_aside: bool = True):
        """(step, state, meta, skipped) of the newest step that restores, None when none is saved.
        `skipped`: one line per newer, damaged step, which is moved aside (`move_aside`: the chief
        process; the others only skip). When no step restores, a UserError and nothing is moved."""
        damaged = []
        for step in sorted(self.all_steps(), reverse=True):
            try:
                state, meta = self.restore(step, target)
            except DamagedCheckpoint as e:
                damaged.append((step, str(e)))
                continue
            skipped = []
            for bad, why in damaged:
                where = self._move_aside(bad) if move_aside else None
                skipped.append(f"{why}: skipped it" + (f", moved to {where}" if where else ""))
            if damaged:
                self._manager.reload()
            return step, state, meta, skipped
        if damaged:
            raise UserError(
                f"no checkpoint restores: {damaged[0][1]}"
                + (f"; and the {len(damaged) - 1} older one(s)" if len(damaged) > 1 else "")
                + f"; move {self.directory} aside to start the run over"
            )
        return None

    def _move_aside(self, step: int):
        folder = self.directory.parent / run_dir.DAMAGED_CHECKPOINTS_DIR
        folder.mkdir(parents=True, exist_ok=True)
        target, n = folder / str(step), 1
        while target.exists():  # a step damaged before: keep both
            target, n = folder / f"{step}-{n}", n + 1
        (self.directory / str(step)).rename(target)
        return target

    def restore_meta(self, step: int) -> dict[str, Any]:
        return self._manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]

    def wait(self) -> None:
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()


def sharded_target(abstract: TrainState, shardings: TrainState) -> TrainState:
    """ShapeDtypeStructs carrying the shardings to restore onto."""
    return jax.tree.map(lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), abstract, shardings)
