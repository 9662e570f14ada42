"""Completion summaries per epoch: checked against numpy and against hand-made records."""

import numpy as np
import pytest

from rt_jax.evaluation import summaries
from rt_jax.tasks import score
from rt_jax.teacher.record import Record


def record(i, completion_index=0, tokens=10, finish="eos", fmt=True, gold_in=False):
    return Record(
        teacher="student",
        method="ft_cot.epoch00",
        task="multiarith",
        sample_index=i,
        completion_index=completion_index,
        reasoning_prompt="",
        reasoning_completion="",
        answer_prompt="",
        answer_completion="",
        reasoning_finish_reason=finish,
        answer_finish_reason=None,
        prediction=None,
        correct=False,
        extra={"followed_format": fmt, "contains_gold": gold_in, "num_tokens": tokens},
    )


@pytest.mark.parametrize("values", [[3], [1, 2], [5, 1, 9, 2, 7, 7, 30], list(range(101))])
def test_percentile_is_numpys_linear_one(values):
    for q in (0, 50, 90, 100):
        assert summaries.percentile(values, q) == pytest.approx(np.percentile(values, q))


def test_summaries_count_first_completions_only():
    records = [
        record(0, tokens=4, finish="eos", fmt=True, gold_in=True),
        record(1, tokens=20, finish="length", fmt=False, gold_in=True),
        record(2, tokens=8, finish="stop", fmt=True, gold_in=False),
        record(3, tokens=40, finish="length", fmt=False, gold_in=False),
        record(0, completion_index=1, tokens=999, finish="length", fmt=False, gold_in=False),  # a sample: not counted
    ]
    s = summaries.summarize(records)
    assert s == {
        "contains_gold": 50.0,
        "followed_format": 50.0,
        "ended": 50.0,
        "length_mean": 18.0,
        "length_median": 14.0,
        "length_p90": pytest.approx(np.percentile([4, 20, 8, 40], 90)),
    }
    old = record(0)
    del old.extra["num_tokens"]  # predictions saved before summaries existed
    assert summaries.summarize([old]) == {}


@pytest.mark.parametrize(
    "task, completion, gold, correct, anywhere",
    [
        ("multiarith", "we had 3, then 12, so 5", "12", False, True),
        ("multiarith", "we had 3, then 5", "12", False, False),
        ("svamp", "1,200 and 7.0", "7", False, True),
        ("date_understanding", "(B) or rather (C)", "C", False, True),
    ],
)
def test_contains_gold_looks_at_every_answer_shaped_part(task, completion, gold, correct, anywhere):
    scored = score(task, completion, gold)
    assert scored.correct == correct
    assert summaries.contains_gold(task, scored.candidates, gold) == anywhere
