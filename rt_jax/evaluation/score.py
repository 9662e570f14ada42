"""Decode prompts, score each completion against its example's gold answer, save the
predictions, and summarise them as accuracy.

Decoding goes through rt_jax.decoding's decoder cache (`get_decoder`: one compiled decoder per
model, settings and mesh) with the params handed in per call, so every epoch of a training run
reuses the same compilations. A training run hands over its model without params (its train
state owns them, sharded as in training); nothing here keeps a reference to them.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Sequence

from rt_jax import decoding
from rt_jax.errors import UserError
from rt_jax.evaluation import predictions, summaries
from rt_jax.tasks import score


def decode_config(config, **changes) -> decoding.DecodeConfig:
    """The run's decoding settings (config.eval and the seed), with `changes`, validated."""
    e = config.eval
    settings = decoding.DecodeConfig(
        strategy=e.strategy,
        max_new_tokens=e.max_new_tokens,
        num_beams=e.num_beams,
        temperature=e.temperature,
        batch_size=e.batch_size,
        seed=config.seed,
    )
    return decoding.validate(dataclasses.replace(settings, **changes))


def decode(loaded, params, prompts: Sequence[str], settings: decoding.DecodeConfig, mesh=None) -> list:
    """Completions (rt_jax.decoding.Decoded, prompt-major) of `prompts` with `params`."""
    return decoding.get_decoder(loaded, settings, mesh).decode_texts(list(prompts), params=params)


def evaluate_prompts(
    loaded,
    params,
    task: str,
    examples: Sequence[Any],
    prompts: Sequence[str],
    answer_prefix: str | None,
    settings: decoding.DecodeConfig,
    out_dir: str | os.PathLike,
    epoch: int,
    *,
    model: str = "student",
    method: str = "ft_cot",
    mesh=None,
) -> dict[str, Any]:
    """Decodes `prompts` (one per example), scores each completion against the example's gold
    answer, appends the predictions of `model` (as `method` at `epoch`) under out_dir, and
    returns {"accuracy" (percent), "num_test", "num_correct", "predictions_path", "max_new_tokens"}
    and the summaries of rt_jax.evaluation.summaries (shares of completions with the gold answer
    anywhere, in the format, ended before the limit; lengths)."""
    if not examples:
        raise UserError(f"evaluation of {task}: no examples to evaluate")
    if len(prompts) != len(examples):
        raise ValueError(f"{len(prompts)} prompts for {len(examples)} examples")
    outputs = decode(loaded, params, prompts, settings, mesh)
    per_prompt = settings.num_return_sequences  # outputs are prompt-major
    saved_as = predictions.predictions_method(method, epoch)
    records = []
    for i, (example, prompt) in enumerate(zip(examples, prompts)):
        for c in range(per_prompt):
            out = outputs[i * per_prompt + c]
            scored = score(task, out.text, example.answer, answer_prefix=answer_prefix)
            records.append(predictions.prediction_record(model, saved_as, task, example, c, prompt, out, scored, epoch))
    path = predictions.write_predictions(out_dir, model, saved_as, task, records, epoch)
    # Accuracy over the first completion of each question, as the paper reports.
    firsts = [r for r in records if r.completion_index == 0]
    num_correct = sum(r.correct for r in firsts)
    return {
        "accuracy": 100.0 * num_correct / len(firsts),
        "num_test": len(firsts),
        "num_correct": num_correct,
        "predictions_path": str(path),
        "max_new_tokens": settings.max_new_tokens,
        **summaries.summarize(records),
    }
