"""Scoring against the real data: gold answers score correct, Kojima's own cleansing of his
logs is reproduced block for block, and no string crashes the scorer."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rt_jax.tasks import TASK_INFO, TASKS, load_dataset
from rt_jax.tasks.scoring import extract_candidates, kojima_cleanse, kojima_gold, normalize_gold, score


@pytest.mark.parametrize("task", TASKS)
def test_gold_answers_score_correct(task, data_dir):
    for ex in load_dataset(task, data_dir).examples:
        assert score(task, ex.answer, ex.answer).correct, ex
        tagged = score(task, f"Let's see, no answer here --> {ex.answer}", ex.answer, answer_prefix="-->")
        assert tagged.correct and tagged.followed_format, ex


def _log_blocks(data_dir, task, method):
    text = (data_dir / "raw/kojima_zero_shot_cot/log" / f"{TASK_INFO[task].kojima_log}_{method}.log").read_text()
    return re.findall(r"pred_before : (.*?)\npred_after : (.*?)\npred_list.*?\nGT : (.*?)\n", text, re.S)


@pytest.mark.parametrize("task", TASKS)
def test_kojima_cleansing_reproduces_his_logs(task, data_dir):
    """`pred_after` of every block of both logs equals our cleansing of `pred_before`."""
    for method in ("zero_shot_cot", "zero_shot"):
        blocks = _log_blocks(data_dir, task, method)
        assert len(blocks) in (TASK_INFO[task].size, TASK_INFO[task].parts[-1].rows)
        for before, after, _ in blocks:
            assert kojima_cleanse(task, before) == after, (before, after)


@pytest.mark.parametrize("task", ["single_eq", "svamp", "strategy_qa", "coin_flip", "multiarith"])
def test_kojima_gold_spelling(task, data_dir):
    golds = {gt for _, _, gt in _log_blocks(data_dir, task, "zero_shot_cot")}
    ours = {kojima_gold(task, ex.answer) for ex in load_dataset(task, data_dir).examples}
    assert golds == ours


def test_prefix_rules_of_the_paper():
    # prefix found: first candidate after it; not found: last candidate of the whole text.
    s = score("gsm8k", "He had 3 apples and 1,200 pears --> 1,203 so 5", "1,203", answer_prefix="-->")
    assert (s.prediction, s.candidates, s.correct, s.followed_format) == ("1203", ("1203", "5"), True, True)
    s = score("gsm8k", "He had 3 apples and 1,200 pears, so 1203", "1203", answer_prefix="-->")
    assert (s.prediction, s.correct, s.followed_format) == ("1203", True, False)
    s = score("gsm8k", "18.0", "18")  # gsm8k/multiarith compare strings, as the paper did
    assert s.prediction == "18.0" and not s.correct
    s = score("svamp", "It is 51", "51.0", answer_prefix="-->")
    assert s.prediction == 51.0 and s.correct and not s.followed_format
    assert score("date_understanding", "The answer is (F).", "F", answer_prefix="The answer is").correct
    assert extract_candidates("tracking_shuffled_objects", "Alice has D then C") == ["A", "C"]
    assert extract_candidates("aqua", "FEAB") == ["E", "A", "B"]
    assert score("strategy_qa", "Yes: because... --> yes.", "Yes", answer_prefix="-->").prediction == "yes"
    assert score("last_letter_concatenation", ' "ya jo". ', "yajo").correct
    empty = score("coin_flip", "maybe", "yes", answer_prefix="-->")
    assert empty.prediction is None and empty.candidates == () and not empty.correct


@settings(max_examples=150, deadline=None)
@given(task=st.sampled_from(TASKS), completion=st.text(), prefix=st.one_of(st.none(), st.text(max_size=4)))
def test_no_completion_crashes_the_scorer(task, completion, prefix):
    gold = {"float": "3.0", "integer": "3", "choice": "A", "yes_no": "yes", "letters": "ab"}[
        TASK_INFO[task].answer_kind
    ]
    result = score(task, completion, gold, answer_prefix=prefix)
    assert result.prediction is None or result.prediction in result.candidates
    if result.correct:
        assert result.prediction == normalize_gold(task, gold)
    assert isinstance(kojima_cleanse(task, completion), str)
