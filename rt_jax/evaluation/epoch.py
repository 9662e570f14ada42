"""The evaluation of a training run's epoch (and of the evaluate command's one "epoch"): its
test split, and its validation split when config.eval.validation_fraction is set."""

from __future__ import annotations

from typing import Any

from rt_jax import run_dir
from rt_jax.evaluation.method import evaluate_run_method
from rt_jax.evaluation.summaries import SUMMARY_KEYS


def held_out_examples(config, limit: int = 0) -> list:
    """The test split's examples (the first `limit` of them when limit > 0: smoke tests)."""
    from rt_jax.tasks import load_dataset, load_split

    dataset = load_dataset(config.task, config.data_dir)
    test = load_split(config.task, config.data_dir, config.get("split", "default")).test
    return dataset.select(test[:limit] if limit > 0 else test)


def validation_examples(config) -> list:
    """The questions held out of the training split (rt_jax.data.pairs.split_validation)."""
    from rt_jax.data.pairs import split_validation
    from rt_jax.tasks import load_dataset, load_split

    train = load_split(config.task, config.data_dir, config.get("split", "default")).train
    _, validation = split_validation(train, config.eval.validation_fraction, config.seed)
    return load_dataset(config.task, config.data_dir).select(validation) if validation else []


def evaluate_epoch(config, loaded, params, workdir, epoch: int, mesh) -> dict[str, Any]:
    """rt_jax.train.loop's evaluate_fn: {"accuracy", "num_test"}, the decoding limit and the
    completion summaries (rt_jax.evaluation.summaries.SUMMARY_KEYS) on the test split (and
    "validation_accuracy" when there is a validation split), predictions under the workdir."""
    predictions_dir = run_dir.path(workdir) / run_dir.PREDICTIONS_DIR
    out = evaluate_run_method(loaded, params, config, held_out_examples(config), predictions_dir, epoch, mesh=mesh)
    kept = ("accuracy", "num_test", "max_new_tokens") + SUMMARY_KEYS
    result = {k: out[k] for k in kept if k in out}
    validation = validation_examples(config)
    if validation:
        val = evaluate_run_method(
            loaded, params, config, validation, predictions_dir / run_dir.VALIDATION_DIR, epoch, mesh=mesh
        )
        result["validation_accuracy"] = val["accuracy"]
    return result
