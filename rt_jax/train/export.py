"""A trained student out of its workdir: restore the params of a checkpoint (the best or the
latest step, or a given one) and, with `python -m rt_jax.train.export`, write them as a Hugging
Face checkpoint that transformers and `rt_jax.evaluate --params_dir` load.

    python -m rt_jax.train.export --workdir=runs/ma-ftcot-gpt2 --out_dir=runs/ma-ftcot-gpt2/export --step=best
"""

from __future__ import annotations

import dataclasses
import sys

import jax
from absl import flags

from rt_jax import run_dir
from rt_jax.cli import run_main
from rt_jax.errors import UserError
from rt_jax.student import load_student
from rt_jax.train import checkpoint as ckpt_lib
from rt_jax.train import optim
from rt_jax.train import state as state_lib

WHICH = ("best", "latest")


def pick_step(checkpoints: ckpt_lib.Checkpoints, step: str | int, flag: str = "--step") -> int:
    """`best` (highest eval accuracy; the latest when none was evaluated), `latest`, or a step
    number; errors name `flag`, the command's flag that gave `step`."""
    saved = checkpoints.all_steps()
    if not saved:
        raise UserError(f"{checkpoints.directory}: no checkpoint saved yet")
    if step == "best":
        return checkpoints.best_step() if checkpoints.best_step() is not None else checkpoints.latest_step()
    if step == "latest":
        return checkpoints.latest_step()
    try:
        number = int(step)
    except ValueError:
        raise UserError(f"{flag}={step}: expected one of {', '.join(WHICH)} or a saved step number") from None
    if number not in saved:
        raise UserError(f"{flag}={number}: not saved in {checkpoints.directory}; saved steps: {sorted(saved)}")
    return number


def restore_student(workdir, step: str | int = "best", flag: str = "--step"):
    """(LoadedModel with the checkpoint's params on the default device, the step restored).
    A damaged checkpoint is a one-line UserError naming its step and `flag` to choose another."""
    config = run_dir.read_config(workdir)
    checkpoints = ckpt_lib.Checkpoints(run_dir.path(workdir) / run_dir.CHECKPOINTS_DIR, async_save=False)
    try:
        chosen = pick_step(checkpoints, step, flag)  # before the student loads
        loaded = load_student(config)
        # The optimizer state's structure does not depend on the schedule's length.
        abstract = state_lib.abstract_state(loaded.params, optim.make_optimizer(config.train, total_steps=1))
        device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
        target = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=device), abstract)
        try:
            state, _ = checkpoints.restore(chosen, target)
        except ckpt_lib.DamagedCheckpoint as e:
            others = sorted(s for s in checkpoints.all_steps() if s != chosen)
            choice = f"choose another with {flag}= (saved steps: {others})" if others else "no other step is saved"
            raise UserError(f"{flag}={step}: {e}; {choice}") from None
    finally:
        checkpoints.close()
    return dataclasses.replace(loaded, params=state.params), chosen


FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_string("workdir", None, "A training workdir (python -m rt_jax.train --workdir=...).")
    flags.DEFINE_string("out_dir", None, "Where to write the Hugging Face checkpoint (must not exist yet).")
    flags.DEFINE_string("step", "best", "best (highest eval accuracy), latest, or a saved step number.")


def main(argv):
    from absl import logging

    from rt_jax.models import save_pretrained

    if len(argv) > 1:
        raise UserError(f"unexpected arguments {argv[1:]}; use --flag=value")
    if not FLAGS.workdir or not FLAGS.out_dir:
        raise UserError("--workdir and --out_dir are required")
    run_dir.check_writable(FLAGS.out_dir, "--out_dir")  # before the checkpoint is read
    logging.set_verbosity(logging.WARNING)  # orbax logs every restore at INFO
    loaded, step = restore_student(FLAGS.workdir, FLAGS.step)
    save_pretrained(loaded, FLAGS.out_dir)
    print(f"step {step} of {FLAGS.workdir} -> {FLAGS.out_dir}", file=sys.stderr)


def run():
    run_main(main, define_flags)


if __name__ == "__main__":
    run()
