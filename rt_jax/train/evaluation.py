"""Per-epoch evaluation: decode the test (or validation) questions, score, save predictions.

Predictions are saved as teacher-cache completion records (rt_jax.teacher store format), so the
cache tools and the report read them like any teacher's completions:
`<out_dir>/<student>/<method>.epoch<NN>/<task>.jsonl`, one record per question, with the
student's prompt and completion as the reasoning step and its parsed prediction and score.
The store is append-only: evaluating an epoch again (a resumed run) re-writes nothing when the
predictions are the same and refuses, naming the file, when they differ. An out_dir in a bucket
(gs://) gets the shard through a local mirror: fetched, appended to, copied up whole.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Sequence

import jax

from rt_jax import decoding, formats, methods
from rt_jax.errors import UserError
from rt_jax.tasks import score
from rt_jax.teacher.record import Record
from rt_jax.teacher.store import Conflict, RationaleStore
from rt_jax.train import storage

_DECODERS: dict[tuple, tuple[Any, Any]] = {}


def _decoder(loaded_like, params, config: decoding.DecodeConfig, mesh):
    """One compiled decoder per (model, config, mesh); params are swapped in per call, so every
    epoch reuses the same compilations. The training loop hands over a model without params
    (its train state owns them): the decoder is built around the given ones, sharded as they are."""
    key = (id(loaded_like), config, id(mesh))
    entry = _DECODERS.get(key)
    if entry is None or entry[0] is not loaded_like:
        with_params = loaded_like
        if dataclasses.is_dataclass(loaded_like) and params is not None:
            with_params = dataclasses.replace(loaded_like, params=params)
        shardings = None
        if mesh is not None and params is not None:
            leaves = jax.tree.leaves(params)
            if all(isinstance(x, jax.Array) for x in leaves):
                shardings = jax.tree.map(lambda x: x.sharding, params)
        entry = (loaded_like, decoding.Decoder(with_params, config, mesh=mesh, param_shardings=shardings))
        _DECODERS[key] = entry
    return entry[1]


def _write_records(out_dir, student: str, pred_method: str, task: str, records: list, epoch: int) -> str:
    """Appends `records` to their shard (process 0 only: every host decodes, one writes);
    returns the shard's path."""
    remote = None if storage.is_local(out_dir) else storage.Mirror(storage.workdir_path(out_dir), 0.0)
    store = RationaleStore(remote.local if remote else out_dir)
    path = store.shard_path(student, pred_method, task)
    relative = os.path.relpath(path, store.root)
    try:
        if jax.process_index() == 0 and records:
            if remote:
                remote.fetch(relative)  # the store checks new records against saved ones
            with store.writer(student, pred_method, task) as writer:
                for rec in records:
                    writer.append(rec)
    except Conflict as e:
        raise UserError(
            f"{e} (predictions of epoch {epoch} already saved and different; use a fresh out_dir)"
        ) from None
    finally:
        if remote:
            remote.close()  # copies the shard up when it changed
    return os.fspath(remote.remote / relative) if remote else str(path)


def predictions_method(method: str, epoch: int) -> str:
    return f"{method}.epoch{epoch:02d}"


def evaluate_prompts(
    loaded_like,
    params,
    task: str,
    examples: Sequence[Any],
    prompts: Sequence[str],
    answer_prefix: str | None,
    decode_config: decoding.DecodeConfig,
    out_dir: str | os.PathLike,
    epoch: int,
    *,
    student: str = "student",
    method: str = "ft_cot",
    mesh=None,
) -> dict[str, Any]:
    """Decodes `prompts` (one per example), scores each completion against the example's gold
    answer, appends the records, and returns {"accuracy" (percent), "num_test", "num_correct",
    "predictions_path"}."""
    if not examples:
        raise UserError(f"evaluation of {task}: no examples to evaluate")
    if len(prompts) != len(examples):
        raise ValueError(f"{len(prompts)} prompts for {len(examples)} examples")
    decoder = _decoder(loaded_like, params, decode_config, mesh)
    decoder.params = params
    try:
        outputs = decoder.decode_texts(list(prompts))
    finally:
        decoder.params = None  # the train step donates these buffers; hold no reference
    per_prompt = decode_config.num_return_sequences  # outputs are prompt-major
    pred_method = predictions_method(method, epoch)
    records = []
    for i, (example, prompt) in enumerate(zip(examples, prompts)):
        for c in range(per_prompt):
            out = outputs[i * per_prompt + c]
            s = score(task, out.text, example.answer, answer_prefix=answer_prefix)
            records.append(
                Record(
                    teacher=student,
                    method=pred_method,
                    task=task,
                    sample_index=int(example.sample_index),
                    completion_index=c,
                    reasoning_prompt=prompt,
                    reasoning_completion=out.text,
                    answer_prompt="",
                    answer_completion="",
                    reasoning_finish_reason=out.finish_reason,
                    answer_finish_reason=None,
                    prediction=None if s.prediction is None else str(s.prediction),
                    correct=bool(s.correct),
                    extra={"epoch": epoch, "followed_format": s.followed_format, "gold": example.answer},
                )
            )
    path = _write_records(out_dir, student, pred_method, task, records, epoch)
    # Accuracy over the first completion of each question, as the paper reports.
    firsts = [r for r in records if r.completion_index == 0]
    num_correct = sum(r.correct for r in firsts)
    return {
        "accuracy": 100.0 * num_correct / len(firsts),
        "num_test": len(firsts),
        "num_correct": num_correct,
        "predictions_path": str(path),
    }


def evaluate(
    loaded_like,
    params,
    task: str,
    examples: Sequence[Any],
    template: str,
    decode_config: decoding.DecodeConfig,
    out_dir: str | os.PathLike,
    epoch: int,
    mesh=None,
    *,
    student: str = "student",
    method: str | None = None,
) -> dict[str, Any]:
    """Evaluates `params` on `examples` (rt_jax.tasks Examples: the test split, or a validation
    split from rt_jax.data.pairs.split_validation) prompted with `template` (a method or
    rt_jax.formats template name, e.g. "ft_cot"), scored with that template's answer prefix.
    Returns {"accuracy" (percent), "num_test", "num_correct", "predictions_path"}."""
    kind = formats.model_type(loaded_like.is_encoder_decoder)
    prompts = [formats.format_example(methods.template(template), kind, ex.question).prompt for ex in examples]
    return evaluate_prompts(
        loaded_like,
        params,
        task,
        examples,
        prompts,
        formats.answer_prefix(methods.template(template)),
        decode_config,
        out_dir,
        epoch,
        student=student,
        method=method or template,
        mesh=mesh,
    )
