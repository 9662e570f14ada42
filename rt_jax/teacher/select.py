"""Choosing fine-tuning rationales from the cache, exactly as the paper does.

For each training sample: its first `max_per_sample` completions (completion_index order; D = 1 for
Fine-tune-CoT, D = 2..64 for diverse reasoning), then only the correct ones, optionally without
repeated rationale texts.

Rationale filters (a run's `rationale_filter`, an ablation of the paper's choice; `filter_rationales`):
- `correct`: only rationales whose answer was right (the paper's default);
- `all`: every rationale, trained with the teacher's own answer (rationale and answer agree;
  a rationale with no parsable answer has nothing to end in and is left out);
- `none_gold`: no filter, every rationale trained with the dataset's gold answer.
`max_rationale_tokens` > 0 also leaves out rationales longer than that many whitespace-separated
tokens (the teacher's own tokenizer is not known for cached rationales).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Iterable

from rt_jax.errors import UserError
from rt_jax.teacher.record import Record
from rt_jax.teacher.store import RationaleStore

_CITED_OPTION = re.compile(r"\(([A-F])\)")
RATIONALE_FILTERS = ("correct", "all", "none_gold")


def in_dataset_letters(record: Record) -> Record:
    """The record with option letters cited as "(X)" in its rationale rewritten to the dataset's
    letters. Only imported date-understanding logs need this: their options were shuffled differently
    (`extra["letter_map"]`); the stored record itself is never changed."""
    mapping = record.extra.get("letter_map")
    if not mapping:
        return record
    rationale = _CITED_OPTION.sub(lambda m: f"({mapping.get(m.group(1), m.group(1))})", record.reasoning_completion)
    return dataclasses.replace(record, reasoning_completion=rationale)


def check_filter(rationale_filter: str) -> None:
    if rationale_filter not in RATIONALE_FILTERS:
        raise UserError(
            f"--config.rationale_filter={rationale_filter!r}: expected one of {', '.join(RATIONALE_FILTERS)}"
        )


def filter_rationales(
    records: Iterable[Record], rationale_filter: str = "correct", max_tokens: int = 0
) -> list[Record]:
    """The records a run trains on under `rationale_filter` and `max_tokens` (module docstring)."""
    check_filter(rationale_filter)
    kept = []
    for rec in records:
        if max_tokens > 0 and len(rec.reasoning_completion.split()) > max_tokens:
            continue
        if rationale_filter == "correct" and not rec.correct:
            continue
        if rationale_filter == "all" and rec.prediction is None:
            continue
        kept.append(rec)
    return kept


def select_rationales(
    store: RationaleStore,
    task: str,
    teacher: str,
    method: str,
    sample_indices: Iterable[int],
    max_per_sample: int = 1,
    correct_only: bool = True,
    dedupe: bool = False,
    problems: list[str] | None = None,
) -> list[Record]:
    """Records for fine-tuning, ordered by (sample_index in the given order, completion_index).

    `sample_indices` should be the training split. The first `max_per_sample` completions are taken
    *before* filtering for correctness, as in the paper (a sample with 1 correct out of its first 8
    contributes 1). `dedupe` drops rationales whose stripped text repeats an earlier one of the
    same sample.
    """
    if max_per_sample < 1:
        raise ValueError(f"max_per_sample must be >= 1, got {max_per_sample}")
    grouped = store.by_sample(teacher, method, task, problems)
    chosen = []
    for sample_index in sample_indices:
        seen = set()
        for rec in grouped.get(sample_index, [])[:max_per_sample]:
            if correct_only and not rec.correct:
                continue
            if dedupe:
                text = rec.reasoning_completion.strip()
                if text in seen:
                    continue
                seen.add(text)
            chosen.append(in_dataset_letters(rec))
    return chosen


def train_rationales(
    store: RationaleStore,
    task: str,
    data_dir,
    teacher: str = "text-davinci-002",
    method: str = "zs_cot",
    max_per_sample: int = 1,
    correct_only: bool = True,
    dedupe: bool = False,
    split: str = "default",
    problems: list[str] | None = None,
) -> list[Record]:
    """`select_rationales` over the task's training split (what Fine-tune-CoT trains on)."""
    from rt_jax.tasks import load_split

    train = load_split(task, data_dir, split).train
    return select_rationales(store, task, teacher, method, train, max_per_sample, correct_only, dedupe, problems)
