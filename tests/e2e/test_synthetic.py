"""arith_small: questions solved independently from their text; the rule-based teacher's
rationales are checked step by step, and its slip rate is what was asked for."""
import re

import pytest

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


def test_teacher_error_rate_and_consistency():
    problems = synthetic.make_problems(400, seed=2)
    teacher = synthetic.RuleBasedTeacher(error_rate=0.25, seed=0)
    outs = [(p, o) for p in problems for o in teacher.complete_many(p, 0.7, 4)]
    wrong = sum(o.prediction != p.answer for p, o in outs)
    assert 0.20 < wrong / len(outs) < 0.30  # 1600 samples: the slip rate is what was asked for
    for p, o in outs:
        assert o.answer == f" {o.prediction}."
        assert int(re.findall(r"\d+", o.rationale)[-1]) == int(o.prediction)
    phrasings_used = {o.rationale.split()[0].rstrip(".0123456789+-=") for _, o in outs}
    assert len(phrasings_used) >= 3  # sampling varies the phrasing
    # greedy is deterministic and uses one phrasing
    assert teacher.complete(problems[0], 0.0) == teacher.complete(problems[0], 0.0, 0)
    perfect = synthetic.RuleBasedTeacher(error_rate=0.0)
    assert all(perfect.complete(p, 0.7, 1).prediction == p.answer for p in problems)
