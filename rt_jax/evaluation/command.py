"""Decode and score a student without training it: `python -m rt_jax.evaluate`.

    python -m rt_jax.evaluate --config=paper:multiarith,zs_cot,gpt2 --workdir=runs/ma-zscot
    python -m rt_jax.evaluate --config=paper:multiarith,ft_cot,gpt2 --workdir=runs/ma-ftcot-eval \\
        --params_dir=runs/ma-ftcot/export --self_consistency=8
    python -m rt_jax.evaluate --config=paper:multiarith,ft_cot,gpt2 --workdir=runs/ma-ftcot-sc \\
        --checkpoint=runs/ma-ftcot --checkpoint_step=best --self_consistency=8

Prompting baselines (zs, zs_cot with Kojima's two steps, fs_cot with the paper's exemplars) on a
pretrained student, or any fine-tuning method's prompt (config.template, else the method's) on
weights saved with rt_jax.models.save_pretrained (--params_dir) or a training run's checkpoint
(--checkpoint). Beyond the paper, --self_consistency=N samples N completions per question
(temperature --sc_temperature) and takes the majority answer. Writes a workdir as training
does (rt_jax.run_dir): config.json, predictions/, results.json (results_sc<N>.json).
"""

from __future__ import annotations

import time

from absl import flags
from ml_collections import config_flags

from rt_jax import run_dir
from rt_jax.configs.validate import validate_run
from rt_jax.errors import UserError
from rt_jax.evaluation.epoch import held_out_examples
from rt_jax.evaluation.method import check_chat_template, evaluate_run_method, self_consistency
from rt_jax.student import load_student


def check_options(limit: int, num_samples: int, temperature: float) -> None:
    """The evaluation's own settings (one-line UserErrors naming the command's flags)."""
    if limit < 0:
        raise UserError(f"--max_test_examples={limit}: expected >= 0 (0: all test questions)")
    if num_samples < 0:
        raise UserError(f"--self_consistency={num_samples}: expected >= 0 (0: one greedy completion)")
    if num_samples and not temperature > 0:
        raise UserError(f"--sc_temperature={temperature}: expected > 0 with --self_consistency")


def run_evaluation(
    config,
    workdir,
    params_dir: str | None = None,
    num_samples: int = 0,
    temperature: float = 0.7,
    limit: int = 0,
    loaded=None,
) -> dict:
    """Evaluates config's method on the test split (the first `limit` questions when > 0) and
    writes the workdir; returns the results. The workdir is checked and locked before the
    student loads; `loaded` replaces loading it."""
    start = time.monotonic()
    run_dir.check(config, workdir)
    validate_run(config, training=False, loads_student=loaded is None and not params_dir)
    check_options(limit, num_samples, temperature)
    with run_dir.lock(workdir):
        loaded = loaded or load_student(config, params_dir)
        check_chat_template(config, loaded.tokenizer)
        examples = held_out_examples(config, limit)
        run_dir.write_snapshot(config, workdir)
        out_dir = run_dir.path(workdir) / run_dir.PREDICTIONS_DIR
        method, extra, name = config.method, {}, run_dir.RESULTS_FILE
        if num_samples:
            metrics = self_consistency(loaded, loaded.params, config, examples, out_dir, 0, num_samples, temperature)
            method, name = f"{config.method}-sc{num_samples}", run_dir.self_consistency_results_file(num_samples)
            extra = {
                "self_consistency": {
                    "num_samples": num_samples,
                    "temperature": temperature,
                    "sample_accuracy": metrics["sample_accuracy"],
                }
            }
        else:
            metrics = evaluate_run_method(loaded, loaded.params, config, examples, out_dir, 0)
        epochs = [{"epoch": 0, "step": 0, **{k: metrics[k] for k in ("accuracy", "num_test", "predictions_path")}}]
        # Weights of a fine-tuned student (--params_dir) were trained on the config's teacher data.
        teacher = run_dir.teacher_data(config) if params_dir else None
        result = run_dir.results(
            config, epochs, time.monotonic() - start, teacher_data=teacher, method=method, extra=extra
        )
        run_dir.write_results(workdir, result, name)
    return result


FLAGS = flags.FLAGS


def define_flags() -> None:
    config_flags.DEFINE_config_file("config", None, "Run config, e.g. paper:multiarith,zs_cot,gpt2.")
    flags.DEFINE_string("workdir", None, "Where config.json, predictions/ and results.json go.")
    flags.DEFINE_string(
        "params_dir",
        None,
        "Weights saved with rt_jax.models.save_pretrained (a fine-tuned student); "
        "default: config.model_path or the paper student's checkpoint.",
    )
    flags.DEFINE_string(
        "checkpoint",
        None,
        "A training workdir: evaluate the params of its checkpoint (--checkpoint_step) instead of --params_dir.",
    )
    flags.DEFINE_string("checkpoint_step", "best", "With --checkpoint: best, latest, or a saved step number.")
    flags.DEFINE_integer(
        "self_consistency", 0, "Sample this many rationales per question and take the majority answer."
    )
    flags.DEFINE_float("sc_temperature", 0.7, "Sampling temperature for --self_consistency.")
    flags.DEFINE_integer("max_test_examples", 0, "Evaluate only the first N test questions (smoke tests); 0: all.")


def main(argv) -> None:
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {argv[1:]}")
    if FLAGS.config is None:
        raise UserError("--config is required, e.g. --config=paper:multiarith,zs_cot,gpt2")
    if not FLAGS.workdir:
        raise UserError("--workdir is required: where config.json, predictions and results.json go")
    if FLAGS.checkpoint and FLAGS.params_dir:
        raise UserError("--checkpoint and --params_dir both name the weights: give one")
    from absl import logging

    logging.set_verbosity(logging.WARNING)  # orbax logs every restore at INFO
    loaded = None
    if FLAGS.checkpoint:
        from rt_jax.train.export import restore_student

        run_dir.check(FLAGS.config, FLAGS.workdir)  # before the checkpoint is read
        validate_run(FLAGS.config, training=False, loads_student=False)
        check_options(FLAGS.max_test_examples, FLAGS.self_consistency, FLAGS.sc_temperature)
        loaded, _ = restore_student(FLAGS.checkpoint, FLAGS.checkpoint_step, flag="--checkpoint_step")
    result = run_evaluation(
        FLAGS.config,
        FLAGS.workdir,
        FLAGS.params_dir,
        FLAGS.self_consistency,
        FLAGS.sc_temperature,
        FLAGS.max_test_examples,
        loaded=loaded,
    )
    print(
        f"{result['task']} {result['method']} {result['student']}: accuracy {result['final']['accuracy']:.2f}% "
        f"on {result['epochs'][-1]['num_test']} test questions ({result['wall_time_s']:.0f} s)"
    )
