"""Predictions: a model's scored completions, saved as rationale-cache records.

Predictions use the teacher cache's record format and store (rt_jax.teacher.record / .store), so
the cache tools and the report read them like any teacher's completions. In a prediction the
record's `teacher` slot holds the model that wrote the completion (the student being
evaluated); this module calls it `model` and is the only place that fills or reads that slot.

    <out_dir>/<model>/<method>.epoch<NN>/<task>.jsonl    one record per question and completion

with the model's prompt and completion as the reasoning step, and its parsed prediction and
score (`extra`: epoch, followed_format, gold answer, contains_gold, num_tokens: the completion's
generated tokens; rt_jax.evaluation.summaries reads them). The store is append-only: saving an epoch
again (a resumed run) re-writes nothing when the predictions are the same and refuses, naming
the file, when they differ. An out_dir in a bucket (gs://) gets the shard through a local
mirror: fetched, appended to, copied up whole.
"""

from __future__ import annotations

import os
from typing import Sequence

import jax

from rt_jax.errors import UserError
from rt_jax.evaluation.summaries import contains_gold
from rt_jax.teacher.record import Record
from rt_jax.teacher.store import Conflict, RationaleStore
from rt_jax.train import storage


def predictions_method(method: str, epoch: int) -> str:
    """The cache method name of a method's predictions at one epoch: `ft_cot.epoch03`."""
    return f"{method}.epoch{epoch:02d}"


def prediction_record(
    model: str, method: str, task: str, example, completion_index: int, prompt: str, decoded, scored, epoch: int
) -> Record:
    """One scored completion of `model` (a rt_jax.decoding Decoded, its rt_jax.tasks Score) as
    a record of the predictions shard (`method` is already the epoch's, predictions_method)."""
    return Record(
        teacher=model,  # the model that wrote the completion: see the module docstring
        method=method,
        task=task,
        sample_index=int(example.sample_index),
        completion_index=completion_index,
        reasoning_prompt=prompt,
        reasoning_completion=decoded.text,
        answer_prompt="",
        answer_completion="",
        reasoning_finish_reason=decoded.finish_reason,
        answer_finish_reason=None,
        prediction=None if scored.prediction is None else str(scored.prediction),
        correct=bool(scored.correct),
        extra={
            "epoch": epoch,
            "followed_format": scored.followed_format,
            "gold": example.answer,
            "contains_gold": contains_gold(task, scored.candidates, example.answer),
            "num_tokens": len(decoded.tokens),
        },
    )


def write_predictions(out_dir, model: str, method: str, task: str, records: Sequence[Record], epoch: int) -> str:
    """Appends `records` to their shard (process 0 only: every host decodes, one writes);
    returns the shard's path."""
    remote = None if storage.is_local(out_dir) else storage.Mirror(storage.workdir_path(out_dir), 0.0)
    store = RationaleStore(remote.local if remote else out_dir)
    path = store.shard_path(model, method, task)
    relative = os.path.relpath(path, store.root)
    try:
        if jax.process_index() == 0 and records:
            if remote:
                remote.fetch(relative)  # the store checks new records against saved ones
            with store.writer(model, method, task) as writer:
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


def read_predictions(out_dir, model: str, method: str, task: str) -> dict[int, list[Record]]:
    """A local predictions shard: sample_index -> its records by completion_index."""
    return RationaleStore(out_dir).by_sample(model, method, task)
