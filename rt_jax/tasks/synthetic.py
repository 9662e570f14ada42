"""The offline demo's synthetic task and its rule-based teacher.

`arith_small`: short word problems over a running count, e.g.
"Gus has 7 pens, loses 3, finds 4. How many pens?" (answer "8").
A small student trained from scratch cannot do two or three additions in one step from a few
hundred examples, but learns to when the target spells out every intermediate count: the
Fine-tune-CoT effect in miniature (see /work/shared/notes/demo-pilot.md).

`RuleBasedTeacher` plays the large teacher: greedy decoding gives one fixed phrasing, sampling
gives varied phrasings (diverse reasoning), and with probability `error_rate` a sample makes an
arithmetic slip that carries to a wrong final answer, so the correctness filter has work to do.
Every phrasing writes each intermediate state and ends with an explicit read-out; the pilot
found that a phrasing dropping steps pulls greedy decoding onto it and ruins accuracy.
"""
from __future__ import annotations

import dataclasses
import random
from typing import Sequence

TASK_NAME = "arith_small"

_NAMES = ("Gus", "Ada", "Liv", "Max", "Noa", "Eli", "Mia", "Tom", "Zoe", "Sam", "Ben", "Ivy")
_OBJECTS = ("pens", "apples", "coins", "cards", "shells", "books", "cups", "stones", "keys", "eggs")
# (verb, sign): the verb's effect on the count.
_VERBS = (("finds", +1), ("gets", +1), ("buys", +1), ("loses", -1), ("gives away", -1), ("eats", -1))


@dataclasses.dataclass(frozen=True)
class Problem:
    """One question with its structure, so the teacher can reason about it."""

    sample_index: int
    name: str
    obj: str
    start: int
    steps: tuple[tuple[str, int, int], ...]  # (verb, sign, amount)
    question: str
    answer: str


def _states(start: int, steps) -> list[int]:
    states = [start]
    for _, sign, amount in steps:
        states.append(states[-1] + sign * amount)
    return states


def _make_problem(index: int, rng: random.Random, min_ops: int, max_ops: int, max_start: int,
                  max_operand: int) -> Problem:
    name, obj = rng.choice(_NAMES), rng.choice(_OBJECTS)
    start = rng.randint(1, max_start)
    steps, count = [], start
    for _ in range(rng.randint(min_ops, max_ops)):
        verb, sign = rng.choice(_VERBS)
        if sign < 0 and count <= 1:  # keep counts positive: flip to a gain
            verb, sign = rng.choice([v for v in _VERBS if v[1] > 0])
        amount = rng.randint(1, max_operand if sign > 0 else min(max_operand, count - 1))
        steps.append((verb, sign, amount))
        count += sign * amount
    actions = ", ".join(f"{verb} {amount}" for verb, _, amount in steps)
    question = f"{name} has {start} {obj}, {actions}. How many {obj}?"
    return Problem(index, name, obj, start, tuple(steps), question, str(count))


def make_problems(num: int, seed: int = 0, min_ops: int = 2, max_ops: int = 3, max_start: int = 9,
                  max_operand: int = 5) -> list[Problem]:
    """`num` distinct problems (distinct question texts), deterministic in `seed`."""
    rng = random.Random(seed)
    seen, problems = set(), []
    attempts = 0
    while len(problems) < num:
        attempts += 1
        if attempts > 50 * num + 1000:
            raise ValueError(f"cannot make {num} distinct arith_small problems with these ranges")
        p = _make_problem(len(problems), rng, min_ops, max_ops, max_start, max_operand)
        if p.question not in seen:
            seen.add(p.question)
            problems.append(p)
    return problems


def make_split(num_train: int, num_test: int, seed: int = 0, **ranges) -> tuple[list[Problem], list[int], list[int]]:
    """Problems with sample indices 0..n-1, train indices first, then test indices."""
    problems = make_problems(num_train + num_test, seed, **ranges)
    return problems, list(range(num_train)), list(range(num_train, num_train + num_test))


# ---- the rule-based teacher -------------------------------------------------------------------

# Phrasings: (opening, one step). Every one writes each intermediate count; they are short on
# purpose, since a byte-level student pays for every character in training time.
PHRASINGS = (
    ("", "{a}{op}{n}={b}."),
    ("Has {start}. ", "{Verb} {n}: {b}."),
    ("", "{a} {word} {n} is {b}."),
    ("Start {start}. ", "{op}{n} gives {b}."),
)


def render_rationale(problem: Problem, states: Sequence[int], phrasing: int = 0) -> str:
    """The rationale for `problem` with the given counts after each step (may hold a slip)."""
    opening, step = PHRASINGS[phrasing]
    parts = [step.format(a=a, b=b, n=n, op="+" if sign > 0 else "-", word="plus" if sign > 0 else "minus",
                         Verb=verb.capitalize())
             for (verb, sign, n), a, b in zip(problem.steps, states, states[1:])]
    return " " + opening.format(start=states[0]) + " ".join(parts)


@dataclasses.dataclass(frozen=True)
class TeacherOutput:
    rationale: str  # the reasoning step's completion, e.g. " 7-3=4. 4+4=8."
    answer: str  # the answer step's completion, e.g. " 8."
    prediction: str  # the number it states, e.g. "8"


@dataclasses.dataclass
class RuleBasedTeacher:
    """A stand-in for the large teacher on `arith_small`.

    `complete(problem, temperature, sample)` answers like Zero-shot-CoT: a rationale, then the
    final number. Temperature 0 is greedy: the first phrasing, one fixed slip decision per
    problem and seed. With probability `error_rate` a completion slips by one at one step and
    carries the wrong count to the end, so its answer is wrong and the correctness filter drops it.
    """

    error_rate: float = 0.2
    seed: int = 0

    def complete(self, problem: Problem, temperature: float = 0.0, sample: int = 0) -> TeacherOutput:
        rng = random.Random(f"{self.seed}/{problem.sample_index}/{temperature}/{sample}")
        phrasing = 0 if temperature == 0 else rng.randrange(len(PHRASINGS))
        states = _states(problem.start, problem.steps)
        if rng.random() < self.error_rate:
            k = rng.randrange(len(problem.steps))
            slipped = states[k + 1] + rng.choice((-1, 1))
            if slipped < 0:
                slipped = states[k + 1] + 1
            states = states[:k + 1] + _states(slipped, problem.steps[k + 1:])
        final = str(states[-1])
        return TeacherOutput(render_rationale(problem, states, phrasing), f" {final}.", final)

    def complete_many(self, problem: Problem, temperature: float, num_samples: int) -> list[TeacherOutput]:
        return [self.complete(problem, temperature, i) for i in range(num_samples)]
