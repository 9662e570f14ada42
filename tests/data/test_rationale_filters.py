"""The ablations of the training data: rationale filters, longest rationale, training-set size,
on the real MultiArith data and Kojima et al.'s teacher log (its pred_mode / GT lines)."""

import re

import pytest

from rt_jax.data.pairs import build_training_pairs, limit_questions
from rt_jax.errors import UserError
from rt_jax.tasks import load_split
from rt_jax.teacher.import_kojima import import_log
from rt_jax.teacher.store import RationaleStore

LOG = "raw/kojima_zero_shot_cot/log/multiarith_zero_shot_cot.log"


@pytest.fixture(scope="module")
def kojima_cache(data_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("cache")
    import_log(RationaleStore(root), data_dir / LOG, data_dir, [])
    return root


def log_answers(data_dir, multiarith_raw):
    """Train sample index -> (teacher's pred_mode, GT), straight from the log text."""
    train = set(load_split("multiarith", data_dir).train)
    by_question = {}
    for i, row in enumerate(multiarith_raw):
        by_question.setdefault(row["sQuestion"].strip(), []).append(i)
    out = {}
    for block in (data_dir / LOG).read_text().split("*" * 25 + "\n"):
        q = re.search(r"^Q: (.*?)\nA: ", block, re.S | re.M)
        if q:
            pred, gold = re.search(r"^pred_mode : (.*)$", block, re.M)[1], re.search(r"^GT : (.*)$", block, re.M)[1]
            out.update({i: (pred, gold) for i in by_question[q[1].strip()] if i in train})
    return out


def pairs(data_dir, cache, counts=None, **settings):
    return build_training_pairs(
        "multiarith",
        "ft_cot",
        data_dir=data_dir,
        is_encoder_decoder=False,
        teacher_cache_dir=cache,
        rationale_counts=counts,
        **settings,
    )


def target_answer(pair):
    return re.fullmatch(r" (.*) --> (\S+)", pair.target, re.S).group(2)


def as_number(text):
    return float(text) if text.strip() else None


def test_the_three_rationale_filters(data_dir, multiarith_raw, kojima_cache):
    answers = log_answers(data_dir, multiarith_raw)
    right = {i for i, (pred, gold) in answers.items() if as_number(pred) == as_number(gold)}
    assert 0 < len(right) < len(answers)

    correct = pairs(data_dir, kojima_cache)
    assert {p.sample_index for p in correct} == right

    counts = {}
    none_gold = pairs(data_dir, kojima_cache, counts, rationale_filter="none_gold")
    assert {p.sample_index for p in none_gold} == set(answers)  # no filter
    assert counts == {"used": len(answers), "filtered_out": 0}
    for p in none_gold:  # ... and the gold answer ends every target, right or wrong rationale
        assert as_number(target_answer(p)) == as_number(answers[p.sample_index][1])

    everything = pairs(data_dir, kojima_cache, rationale_filter="all")
    records = RationaleStore(kojima_cache).by_sample("text-davinci-002", "zs_cot", "multiarith")
    parsed = {i for i in answers if records[i][0].prediction is not None}
    assert {p.sample_index for p in everything} == parsed and len(parsed) > len(right)
    for p in everything:  # the teacher's own (parsed) answer ends its rationale
        assert target_answer(p) == records[p.sample_index][0].prediction
    assert any(as_number(target_answer(p)) != as_number(answers[p.sample_index][1]) for p in everything)

    with pytest.raises(UserError, match=r"rationale_filter='best': expected one of correct, all, none_gold"):
        pairs(data_dir, kojima_cache, rationale_filter="best")


def test_longest_rationale_leaves_out_longer_ones(data_dir, kojima_cache):
    full = pairs(data_dir, kojima_cache, rationale_filter="none_gold")
    lengths = sorted(len(re.fullmatch(r" (.*) --> \S+", p.target, re.S).group(1).split()) for p in full)
    limit = lengths[len(lengths) // 2]
    counts = {}
    short = pairs(data_dir, kojima_cache, counts, rationale_filter="none_gold", max_rationale_tokens=limit)
    assert len(short) == sum(n <= limit for n in lengths) < len(full)
    assert counts["filtered_out"] == len(full) - len(short)


def test_training_set_sizes_are_nested_fixed_subsets(data_dir):
    train = load_split("multiarith", data_dir).train
    subsets = [limit_questions(train, n) for n in (8, 32, 128)]
    assert [len(s) for s in subsets] == [8, 32, 128]
    assert set(subsets[0]) < set(subsets[1]) < set(subsets[2]) <= set(train)
    assert subsets[0] != sorted(train)[:8]  # a random subset, not the first questions
    assert limit_questions(train, 0) == limit_questions(train, 10**6) == sorted(train)
    vanilla = build_training_pairs(
        "multiarith", "ft", data_dir=data_dir, is_encoder_decoder=False, sample_indices=subsets[0]
    )
    assert [p.sample_index for p in vanilla] == subsets[0]
