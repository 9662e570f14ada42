"""Decode and score a student without training it: `python -m rt_jax.evaluate`.

    python -m rt_jax.evaluate --config=configs/paper.py:multiarith,zs_cot,gpt2 --workdir=runs/ma-zscot
    python -m rt_jax.evaluate --config=configs/paper.py:multiarith,ft_cot,gpt2 --workdir=runs/ma-ftcot \\
        --params_dir=runs/ma-ftcot/export --self_consistency=8
    python -m rt_jax.evaluate --config=configs/paper.py:multiarith,ft_cot,gpt2 --workdir=runs/ma-ftcot-sc \
        --checkpoint=runs/ma-ftcot --checkpoint_step=best --self_consistency=8

Prompting baselines (zs, zs_cot with Kojima's two steps, fs_cot with the paper's exemplars) on a
pretrained student, or any fine-tuning method's prompt on weights saved with
rt_jax.models.save_pretrained (--params_dir). Beyond the paper, --self_consistency=N samples N
completions per question (temperature --sc_temperature) and takes the majority answer.
Writes the workdir like a training run: config.json, predictions/, results.json.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import pathlib
import time
from typing import Any, Sequence

from absl import flags
from ml_collections import config_flags

from rt_jax import decoding, formats, methods
from rt_jax.cli import run_main
from rt_jax.errors import UserError
from rt_jax.teacher.store import RationaleStore
from rt_jax.train import evaluation

CONFIG_FILE = "config.json"
RESULTS_FILE = "results.json"
PREDICTIONS_DIR = "predictions"
# What makes a run this run: a workdir holding a config that differs in one of these belongs to
# another run (evaluation settings may change between calls).
IDENTITY_FIELDS = ("task", "method", "student", "model_path", "seed", "num_rationales", "teacher", "template", "split")


# ---- the workdir ----------------------------------------------------------------------------


def _identity(config_dict: dict) -> dict:
    return {k: config_dict.get(k) for k in IDENTITY_FIELDS}


def claim_workdir(workdir: str | pathlib.Path, config) -> pathlib.Path:
    """Creates the workdir and writes the config snapshot, or checks that the snapshot already
    there is of the same run (UserError naming the differing fields otherwise)."""
    workdir = pathlib.Path(workdir)
    path = workdir / CONFIG_FILE
    ours = json.loads(config.to_json_best_effort())
    if path.exists():
        try:
            theirs = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            raise UserError(f"{path}: not valid JSON; expected the config snapshot of an rt_jax run") from None
        diff = {k: (theirs.get(k), ours.get(k)) for k in IDENTITY_FIELDS if theirs.get(k) != ours.get(k)}
        if diff:
            fields = ", ".join(f"{k}={a!r} (this config: {b!r})" for k, (a, b) in diff.items())
            raise UserError(f"--workdir={workdir} belongs to another run: {fields}; choose another --workdir")
    else:
        workdir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(ours, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return workdir


def teacher_summary(config) -> dict | None:
    """The teacher data a method trained on (None for methods without rationales)."""
    source = methods.rationale_source(config.method, config.get("teacher_method", ""))
    if source is None:
        return None
    return {
        "name": config.teacher,
        "cache_method": source.teacher_method,
        "num_rationales": source.num_rationales,
        "cache_dir": str(config.teacher_cache_dir),
    }


def results_dict(
    config,
    epochs: Sequence[dict],
    wall_time_s: float,
    method: str | None = None,
    teacher: dict | None = None,
    extra: dict | None = None,
) -> dict:
    """results.json (BUILD_NOTES.md "Results"): accuracy per epoch, best, final, teacher, wall time."""
    if not epochs:
        raise ValueError("results need at least one evaluated epoch")
    best = max(epochs, key=lambda e: e["accuracy"])  # first of equals: the earliest epoch
    result = {
        "task": config.task,
        "method": method or config.method,
        "student": config.student,
        "seed": config.seed,
        "teacher": teacher,
        "epochs": list(epochs),
        "best": {"epoch": best["epoch"], "accuracy": best["accuracy"]},
        "final": {"epoch": epochs[-1]["epoch"], "accuracy": epochs[-1]["accuracy"]},
        "wall_time_s": round(wall_time_s, 3),
    }
    result.update(extra or {})
    return result


def write_results(workdir: str | pathlib.Path, result: dict, name: str = RESULTS_FILE) -> pathlib.Path:
    path = pathlib.Path(workdir) / name
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)  # readers never see half a file
    return path


# ---- decoding and scoring -------------------------------------------------------------------


def decode_config(config, max_new_tokens: int | None = None, **changes) -> decoding.DecodeConfig:
    """The run's decoding settings (config.eval, as the training loop reads them) with `changes`."""
    from rt_jax.train import loop

    if max_new_tokens:
        changes["max_new_tokens"] = max_new_tokens
    return decoding.validate(dataclasses.replace(loop.decode_config(config), **changes))


def prompts_for(method: str, task: str, examples: Sequence[Any], loaded, data_dir) -> tuple[list[str], str | None]:
    """One prompt per example and the answer prefix to score with (not zs_cot: two steps)."""
    template = methods.template(method)
    if template == "fs_cot":
        return [formats.fs_cot_prompt(task, ex.question, data_dir) for ex in examples], formats.answer_prefix(template)
    kind = formats.model_type(loaded.is_encoder_decoder)
    prompts = [formats.format_example(template, kind, ex.question).prompt for ex in examples]
    return prompts, formats.answer_prefix(template)


def evaluate_method(
    loaded,
    params,
    config,
    examples: Sequence[Any],
    out_dir,
    epoch: int,
    *,
    mesh=None,
    decode: decoding.DecodeConfig | None = None,
    saved_as: str | None = None,
) -> dict:
    """Accuracy of `params` on `examples` with the prompts of config.method; predictions are
    saved under out_dir (as method `saved_as`, default config.method). Zero-shot-CoT runs
    Kojima et al.'s two steps (rationale, then answer)."""
    method = config.method
    decode = decode or decode_config(config)
    common = dict(student=config.student, mesh=mesh, method=saved_as or method)
    if method != "zs_cot":
        prompts, prefix = prompts_for(method, config.task, examples, loaded, config.data_dir)
        return evaluation.evaluate_prompts(
            loaded, params, config.task, examples, prompts, prefix, decode, out_dir, epoch, **common
        )
    reasoning = [formats.zs_cot_reasoning_prompt(ex.question) for ex in examples]
    step1 = _with(decode, max_new_tokens=formats.ZS_COT_REASONING_MAX_TOKENS)
    decoder = decoding.get_decoder(loaded, step1, mesh)
    decoder.params = params
    rationales = [d.text for d in decoder.decode_texts(reasoning)]
    answers = [formats.zs_cot_answer_prompt(config.task, p, r) for p, r in zip(reasoning, rationales)]
    step2 = _with(decode, strategy="greedy", num_beams=1, max_new_tokens=formats.ZS_COT_ANSWER_MAX_TOKENS)
    return evaluation.evaluate_prompts(
        loaded, params, config.task, examples, answers, None, step2, out_dir, epoch, **common
    )


def _with(decode: decoding.DecodeConfig, **changes) -> decoding.DecodeConfig:
    return decoding.validate(dataclasses.replace(decode, **changes))


def majority_vote(predictions: Sequence[str | None]) -> str | None:
    """The most frequent prediction (None ignored); ties go to the one seen first."""
    counts = collections.Counter(p for p in predictions if p is not None)
    if not counts:
        return None
    top = max(counts.values())
    return next(p for p in predictions if p is not None and counts[p] == top)


def self_consistency(
    loaded,
    params,
    config,
    examples: Sequence[Any],
    out_dir,
    epoch: int,
    num_samples: int,
    temperature: float = 0.7,
    *,
    mesh=None,
) -> dict:
    """Wang et al.'s self-consistency: sample `num_samples` completions per question and score
    the majority answer. Returns {"accuracy", "num_test", "num_correct", "sample_accuracy",
    "predictions_path"}; sample_accuracy is the mean accuracy of single samples."""
    if config.method == "zs_cot":
        raise UserError(
            "--self_consistency: zs_cot answers in two steps; use it with zs, fs_cot or a fine-tuned method"
        )
    if num_samples < 1:
        raise UserError(f"--self_consistency={num_samples}: expected a number of samples >= 1")
    decode = decode_config(
        config, strategy="sample", temperature=temperature, num_beams=1, num_return_sequences=num_samples
    )
    method = f"{config.method}-sc{num_samples}"
    out = evaluate_method(loaded, params, config, examples, out_dir, epoch, mesh=mesh, decode=decode, saved_as=method)
    records = RationaleStore(out_dir).by_sample(
        config.student, evaluation.predictions_method(method, epoch), config.task
    )
    num_correct, sample_correct = 0, 0
    for ex in examples:
        recs = records[int(ex.sample_index)][:num_samples]
        vote = majority_vote([r.prediction for r in recs])
        # a record holding the majority prediction carries its score against the gold answer
        num_correct += any(r.prediction == vote and r.correct for r in recs) if vote is not None else 0
        sample_correct += sum(r.correct for r in recs)
    n = len(examples)
    return {
        "accuracy": 100.0 * num_correct / n,
        "num_test": n,
        "num_correct": num_correct,
        "sample_accuracy": 100.0 * sample_correct / (n * num_samples),
        "predictions_path": out["predictions_path"],
    }


# ---- the command ----------------------------------------------------------------------------


def held_out_examples(config, limit: int = 0) -> list:
    """The test split's examples (the first `limit` of them when limit > 0: smoke tests)."""
    from rt_jax.tasks import load_dataset, load_split

    dataset = load_dataset(config.task, config.data_dir)
    test = load_split(config.task, config.data_dir, config.split).test
    return dataset.select(test[:limit] if limit > 0 else test)


def epoch_evaluator(config, loaded, params, workdir, epoch: int, mesh) -> dict:
    """`evaluate_fn` for rt_jax.train.loop.train: the test split with config.method's prompts."""
    out = evaluate_method(
        loaded, params, config, held_out_examples(config), pathlib.Path(workdir) / PREDICTIONS_DIR, epoch, mesh=mesh
    )
    return {"accuracy": out["accuracy"], "num_test": out["num_test"]}


def load_student(config, params_dir: str | None = None):
    """The student: --params_dir, else config.model_path, else the paper student's checkpoint."""
    from rt_jax.train import loop

    if params_dir:
        config = config.copy_and_resolve_references()
        config.model_path = params_dir
    return loop.load_student(config)


def run_evaluation(
    config,
    workdir,
    params_dir: str | None = None,
    num_samples: int = 0,
    temperature: float = 0.7,
    limit: int = 0,
    loaded=None,
) -> dict:
    """Evaluates config's method on the test split and writes the workdir; returns results."""
    start = time.monotonic()
    workdir = claim_workdir(workdir, config)
    loaded = loaded or load_student(config, params_dir)
    examples = held_out_examples(config, limit)
    out_dir = workdir / PREDICTIONS_DIR
    if num_samples:
        metrics = self_consistency(loaded, loaded.params, config, examples, out_dir, 0, num_samples, temperature)
        method, extra = (
            f"{config.method}-sc{num_samples}",
            {
                "self_consistency": {
                    "num_samples": num_samples,
                    "temperature": temperature,
                    "sample_accuracy": metrics["sample_accuracy"],
                }
            },
        )
    else:
        metrics = evaluate_method(loaded, loaded.params, config, examples, out_dir, 0)
        method, extra = config.method, {}
    epochs = [
        {
            "epoch": 0,
            "step": 0,
            "accuracy": metrics["accuracy"],
            "num_test": metrics["num_test"],
            "predictions_path": metrics["predictions_path"],
        }
    ]
    result = results_dict(
        config,
        epochs,
        time.monotonic() - start,
        method=method,
        teacher=teacher_summary(config) if params_dir else None,
        extra=extra,
    )
    name = RESULTS_FILE if not num_samples else f"results_sc{num_samples}.json"
    write_results(workdir, result, name)
    return result


FLAGS = flags.FLAGS


def define_flags():
    """The command's flags; defined on start, so that one app may import another's module."""
    config_flags.DEFINE_config_file("config", None, "Run config, e.g. configs/paper.py:multiarith,zs_cot,gpt2.")
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


def main(argv):
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {argv[1:]}")
    if FLAGS.config is None:
        raise UserError("--config is required, e.g. --config=configs/paper.py:multiarith,zs_cot,gpt2")
    if not FLAGS.workdir:
        raise UserError("--workdir is required: where config.json, predictions and results.json go")
    if FLAGS.checkpoint and FLAGS.params_dir:
        raise UserError("--checkpoint and --params_dir both name the weights: give one")
    loaded = None
    if FLAGS.checkpoint:
        from rt_jax.train.export import restore_student

        loaded, _ = restore_student(FLAGS.checkpoint, FLAGS.checkpoint_step)
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


def run():
    define_flags()
    run_main(main)


if __name__ == "__main__":
    run()
