"""`python train_driver.py DATA_DIR ROOT WORKDIR [num_epochs]`: the tiny training run the kill
tests interrupt (tests/train's random tiny GPT-2 saved under ROOT/init, 24 MultiArith examples,
a checkpoint after every step so that kills land in saves, a fixed score per epoch)."""

import pathlib
import sys

import jax
from train_helpers import run_config, small_data, tiny_student

from rt_jax import models
from rt_jax.train import loop


def accuracy_by_epoch(config, loaded, params, workdir, epoch, mesh):
    return {"accuracy": 50.0 + epoch, "num_test": 1}


def main(data_dir: str, root: str, workdir: str, num_epochs: str = "3") -> None:
    root = pathlib.Path(root)
    jax.config.update("jax_compilation_cache_dir", str(root / "xla_cache"))  # later segments skip compiling
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    student = tiny_student()
    if not (root / "init").exists():
        models.save_pretrained(student, root / "init")
    config = run_config(data_dir, num_epochs=int(num_epochs), checkpoint_every_steps=1, keep_checkpoints=2)
    config.model_path = str(root / "init")
    examples = loop.build_data(config, student).iterator.examples[:24]
    loop.train(config, workdir, loaded=student, data=small_data(config, examples), evaluate_fn=accuracy_by_epoch)


if __name__ == "__main__":
    main(*sys.argv[1:])
