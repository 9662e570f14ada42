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
from rt_jax.cli import enable_compilation_cache, run_main
from rt_jax.errors import UserError

FLAGS = flags.FLAGS


def define_flags() -> None:
    config_flags.DEFINE_config_file(
        "config", str(configs.path("base")), "Run config: a file, or packaged: paper:<task>,<method>,<student>."
    )
    flags.DEFINE_string("workdir", None, "Run directory: config snapshot, checkpoints, logs, results.json.")
    flags.DEFINE_string(
        "compilation_cache_dir",
        "",
        "Persistent XLA compilation cache folder, or off (default: $RT_JAX_COMPILATION_CACHE, else ~/.cache/rt_jax).",
    )


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {' '.join(argv[1:])!r}; use --flag=value")
    if not FLAGS.workdir:
        raise UserError("--workdir is required (the run's directory)")
    logging.basicConfig(level=logging.INFO)
    if FLAGS.compilation_cache_dir:  # run_main enabled the default one; the flag overrides it
        enable_compilation_cache(FLAGS.compilation_cache_dir)
    from rt_jax.train.loop import train

    results = train(FLAGS.config, FLAGS.workdir)
    best = results.get("best")
    if best:
        print(
            f"best epoch {best['epoch']}: accuracy {best['accuracy']:.2f}%  (final {results['final']['accuracy']:.2f}%)"
        )


def run() -> None:
    run_main(main, define_flags)


if __name__ == "__main__":
    run()
