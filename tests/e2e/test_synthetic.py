"""arith_small: questions solved independently from their text; the rule-based teacher's
rationales are checked step by step, and its slip rate is what was asked for."""

import re

import pytest

from rt_jax.errors import UserError
from rt_jax.tasks import synthetic

_VERB_SIGN = {"finds": 1, "gets": 1, "buys": 1, "loses": -1, "gives away": -1, "eats": -1}


def solve_from_text(question: str) -> int:
    m = re.fullmatch(r"\w+ has (\d+) \w+, (.*)\. How many \w+\?", question)
    assert m, question
    count = int(m.group(1))
    for action in m.group(2).split(", "):
        verb, amount = action.rsplit(" ", 1)
        count += _VERB_SIGN[verb] * int(amount)
        assert count >= 0
    return count


def test_problems_are_distinct_and_answers_follow_from_the_text():
    problems, train, test = synthetic.make_split(300, 200, seed=3)
    assert [p.sample_index for p in problems] == list(range(500))
    assert train == list(range(300)) and test == list(range(300, 500))
    assert len({p.question for p in problems}) == 500
    for p in problems:
        assert str(solve_from_text(p.question)) == p.answer
        assert 2 <= len(p.steps) <= 3 and 1 <= p.start <= 9
    assert synthetic.make_problems(50, seed=3) == problems[:50]  # deterministic in the seed


@pytest.mark.parametrize("phrasing", range(len(synthetic.PHRASINGS)))
def test_every_phrasing_writes_every_intermediate_count(phrasing):
    for p in synthetic.make_problems(40, seed=1):
        states = [p.start]
        for _, sign, n in p.steps:
            states.append(states[-1] + sign * n)
        text = synthetic.render_rationale(p, states, phrasing)
        numbers = [int(x) for x in re.findall(r"\d+", text)]
        # every intermediate count appears, in order, and the last number is the answer
        it = iter(numbers)
        assert all(any(x == s for x in it) for s in states[1:]), text
        assert numbers[-1] == int(p.answer)


def reasoning(question):
    return f"Q: {question}\nA: Let's think step by step."


def test_teacher_error_rate_and_consistency():
    problems = synthetic.make_problems(400, seed=2)
    teacher = synthetic.RuleBasedTeacher(problems, error_rate=0.25, seed=0)
    prompts = [reasoning(p.question) for p in problems for _ in range(4)]
    rationales = [c.text for c in teacher.complete(prompts, 128, 0.7, seed=11)]
    answers = [
        c.text
        for c in teacher.complete([f"{q}{r} Therefore, the answer is" for q, r in zip(prompts, rationales)], 32, 0.0)
    ]
    golds = [p.answer for p in problems for _ in range(4)]
    wrong = sum(a != f" {g}." for a, g in zip(answers, golds))
    assert 0.20 < wrong / len(golds) < 0.30  # 1600 samples: the slip rate is what was asked for
    for r, a in zip(rationales, answers):
        assert a == f" {re.findall(r'[0-9]+', r)[-1]}."  # the answer step reads off the last count
    assert len({r.split()[0].rstrip(".0123456789+-=") for r in rationales}) >= 3  # sampling varies phrasing
    # greedy is deterministic per question, whatever the seed
    assert teacher.complete(prompts[:8], 128, 0.0, seed=1) == teacher.complete(prompts[:8], 128, 0.0, seed=2)
    perfect = synthetic.RuleBasedTeacher(problems, error_rate=0.0)
    assert [
        re.findall(r"[0-9]+", c.text)[-1] for c in perfect.complete([reasoning(p.question) for p in problems], 128, 0.7)
    ] == [p.answer for p in problems]


def test_task_files_registry_and_real_cache(tmp_path):
    from rt_jax.tasks import TASKS, load_dataset, load_split, score
    from rt_jax.teacher.generate import generate_rationales
    from rt_jax.teacher.store import RationaleStore

    problems, train, test = synthetic.make_split(60, 20, seed=5)
    synthetic.write_task_files(tmp_path, problems, train, test)
    assert "arith_small" not in TASKS  # the paper's 12 stay 12
    ds = load_dataset("arith_small", tmp_path)
    assert [(e.question, e.answer) for e in ds] == [(p.question, p.answer) for p in problems]
    assert load_split("arith_small", tmp_path).test == test
    assert score("arith_small", " 7-3=4. 4+4=8. --> 8", "8", answer_prefix="-->").correct
    with pytest.raises(UserError, match="already holds a different arith_small dataset"):
        synthetic.write_task_files(tmp_path, problems[::-1], train, test)

    store = RationaleStore(tmp_path / "cache")
    teacher = synthetic.RuleBasedTeacher(problems, error_rate=0.3)
    generate_rationales(
        store,
        teacher,
        "arith_small",
        ds.select(train),
        "rule-based",
        num_completions=3,
        temperature=0.7,
        progress=False,
    )
    records = store.read("rule-based", "zs_cot_t70", "arith_small")
    assert len(records) == 180
    for rec in records:  # the cache's correctness flag agrees with solving the question independently
        assert rec.correct == (int(rec.prediction) == solve_from_text(ds[rec.sample_index].question))
    assert 0.15 < sum(not r.correct for r in records) / len(records) < 0.45
