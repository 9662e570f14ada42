"""`python -m rt_jax.train --config=paper:multiarith,ft_cot,gpt2 --workdir=DIR [--config.train.batch_size=16 ...]`

Fine-tunes a student: batches from the task (and the teacher cache for Fine-tune-CoT), sharded
train steps over all devices, orbax checkpoints, per-epoch accuracy in DIR/results.json.
Running the same command again resumes from the latest checkpoint in DIR. Multi-host: set
--config.distributed.num_processes (and coordinator_address / process_id off TPU pods) and run
the same command on every host."""

import logging
from typing import Sequence

from absl import flags
from ml_collections import config_flags

from rt_jax import configs
from rt_jax.cli import run_main
from rt_jax.errors import UserError

_CONFIG = config_flags.DEFINE_config_file(
    "config", str(configs.path("base")), "Run config: a file, or packaged: paper:<task>,<method>,<student>."
)
_WORKDIR = flags.DEFINE_string("workdir", None, "Run directory: config snapshot, checkpoints, logs, results.json.")
_COMPILATION_CACHE = flags.DEFINE_string(
    "compilation_cache_dir", "", "Persistent XLA compilation cache (repeated runs skip compiling)."
)


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {' '.join(argv[1:])!r}; use --flag=value")
    if not _WORKDIR.value:
        raise UserError("--workdir is required (the run's directory)")
    logging.basicConfig(level=logging.INFO)
    if _COMPILATION_CACHE.value:
        import jax

        jax.config.update("jax_compilation_cache_dir", _COMPILATION_CACHE.value)
    from rt_jax.train.loop import train

    results = train(_CONFIG.value, _WORKDIR.value)
    best = results.get("best")
    if best:
        print(
            f"best epoch {best['epoch']}: accuracy {best['accuracy']:.2f}%  (final {results['final']['accuracy']:.2f}%)"
        )


def run() -> None:
    run_main(main)


if __name__ == "__main__":
    run()
