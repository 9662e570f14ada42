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
import json
import os
import pathlib
import random
import re
from typing import Sequence

from rt_jax.errors import UserError

TASK_NAME = "arith_small"
DATA_FILE = f"synthetic/{TASK_NAME}.json"  # under a data_dir, beside raw/ and splits/
COT_TRIGGER = "Let's think step by step."
_REASONING_PROMPT = re.compile(r"Q: (.*)\nA: " + re.escape(COT_TRIGGER), re.S)

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


def _make_problem(
    index: int, rng: random.Random, min_ops: int, max_ops: int, max_start: int, max_operand: int
) -> Problem:
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


def make_problems(
    num: int, seed: int = 0, min_ops: int = 2, max_ops: int = 3, max_start: int = 9, max_operand: int = 5
) -> list[Problem]:
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
    parts = [
        step.format(
            a=a, b=b, n=n, op="+" if sign > 0 else "-", word="plus" if sign > 0 else "minus", Verb=verb.capitalize()
        )
        for (verb, sign, n), a, b in zip(problem.steps, states, states[1:])
    ]
    return " " + opening.format(start=states[0]) + " ".join(parts)


@dataclasses.dataclass
class RuleBasedTeacher:
    """A stand-in for the large teacher on `arith_small`, as a teacher backend
    (`complete(prompts, max_tokens, temperature, seed) -> [Completion]`, like
    rt_jax.teacher.backends), so rt_jax.teacher.generate fills the real cache with it.

    Reasoning step ("Q: <question>\nA: Let's think step by step."): a rationale. Greedy
    (temperature 0) always uses the first phrasing; sampling picks one at random. With
    probability `error_rate` a rationale slips by one at one step and carries the wrong count
    to the end, so its answer is wrong and Fine-tune-CoT's correctness filter drops it.
    Answer step (reasoning prompt + rationale + trigger): reads off the rationale's last count.
    """

    problems: Sequence[Problem]
    error_rate: float = 0.2
    seed: int = 0

    def __post_init__(self):
        self._by_question = {p.question: p for p in self.problems}

    def rationale(self, problem: Problem, temperature: float = 0.0, draw: int = 0) -> str:
        rng = random.Random(f"{self.seed}/{problem.sample_index}/{temperature}/{draw}")
        phrasing = 0 if temperature == 0 else rng.randrange(len(PHRASINGS))
        states = _states(problem.start, problem.steps)
        if rng.random() < self.error_rate:
            k = rng.randrange(len(problem.steps))
            slipped = states[k + 1] + rng.choice((-1, 1))
            if slipped < 0:
                slipped = states[k + 1] + 1
            states = states[: k + 1] + _states(slipped, problem.steps[k + 1 :])
        return render_rationale(problem, states, phrasing)

    def complete(self, prompts: list[str], max_tokens: int, temperature: float, seed: int | None = None):
        from rt_jax.teacher.backends import Completion

        out = []
        for i, prompt in enumerate(prompts):
            reasoning = _REASONING_PROMPT.fullmatch(prompt)
            if reasoning:
                problem = self._by_question.get(reasoning.group(1))
                if problem is None:
                    raise ValueError(f"the rule-based teacher knows no question {reasoning.group(1)!r}")
                # Greedy ignores the seed (deterministic per problem); samples differ per draw.
                draw = 0 if temperature == 0 else (seed or 0) + i
                out.append(Completion(self.rationale(problem, temperature, draw), "stop"))
            else:  # answer step: read the last count of the rationale
                numbers = re.findall(r"\d+", prompt.rsplit(COT_TRIGGER, 1)[-1].rsplit("Therefore", 1)[0])
                out.append(Completion(f" {numbers[-1]}." if numbers else " unknown.", "stop"))
        return out


# ---- the task in the rt_jax.tasks registry ----------------------------------------------------


def data_path(data_dir: str | os.PathLike) -> pathlib.Path:
    return pathlib.Path(data_dir) / DATA_FILE


def write_task_files(
    data_dir: str | os.PathLike, problems: Sequence[Problem], train: Sequence[int], test: Sequence[int]
) -> None:
    """The dataset and its split under `data_dir`, as rt_jax.tasks reads the paper's tasks;
    then registers the task with this size. Refuses to replace different existing files."""
    rows = json.dumps([{"question": p.question, "answer": p.answer} for p in problems], indent=0) + "\n"
    split = json.dumps({"train": list(train), "test": list(test)}) + "\n"
    for path, text in (
        (data_path(data_dir), rows),
        (pathlib.Path(data_dir) / "splits" / f"{TASK_NAME}__default.json", split),
    ):
        if path.exists() and path.read_text(encoding="utf-8") != text:
            raise UserError(f"{path}: already holds a different {TASK_NAME} dataset; choose another directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    register(len(problems))


def _read_rows(path: pathlib.Path) -> list[tuple[str, str]]:
    return [(row["question"], row["answer"]) for row in json.loads(path.read_text(encoding="utf-8"))]


def register(num_rows: int) -> None:
    """Makes `arith_small` (with `num_rows` questions) a task of rt_jax.tasks."""
    from rt_jax.tasks import registry

    registry.register_task(
        registry.TaskInfo(
            TASK_NAME,
            (registry.Part(DATA_FILE, num_rows, _read_rows),),
            "integer",
            "\nTherefore, the answer (arabic numerals) is",
            kojima_log="",
        )
    )
