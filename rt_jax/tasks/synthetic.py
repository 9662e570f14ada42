"""The offline demo's synthetic task (its teacher is rt_jax.teacher.rule_based).

`arith_small`: short word problems over a running count, e.g.
"Gus has 7 pens, loses 3, finds 4. How many pens?" (answer "8").
A small student trained from scratch cannot do two or three additions in one step from a few
hundred examples, but learns to when the target spells out every intermediate count: the
Fine-tune-CoT effect in miniature (see /work/shared/notes/demo-pilot.md).

`write_task_files` writes the task into a data_dir as rt_jax.tasks reads the paper's tasks (rows,
split, and a task file that makes the task known to any process given that data_dir).
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import random
from typing import Sequence

from rt_jax.errors import UserError
from rt_jax.tasks import readers, registry

TASK_NAME = "arith_small"
DATA_FILE = f"synthetic/{TASK_NAME}.json"  # under a data_dir, beside raw/ and splits/

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


def running_counts(start: int, steps) -> list[int]:
    """The count before the first step and after each one."""
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


# ---- the task in the rt_jax.tasks registry ----------------------------------------------------


def write_task_files(
    data_dir: str | os.PathLike, problems: Sequence[Problem], train: Sequence[int], test: Sequence[int]
) -> None:
    """The dataset, its split and its task file under `data_dir`, as rt_jax.tasks reads tasks.
    Refuses to replace different existing files."""
    rows = json.dumps([{"question": p.question, "answer": p.answer} for p in problems], indent=0) + "\n"
    split = json.dumps({"train": list(train), "test": list(test)}) + "\n"
    info = registry.TaskInfo(
        TASK_NAME,
        (registry.Part(DATA_FILE, len(problems), readers.read_question_answer_list),),
        "integer",
        "\nTherefore, the answer (arabic numerals) is",
        kojima_log="",
    )
    for path, text in (
        (pathlib.Path(data_dir) / DATA_FILE, rows),
        (pathlib.Path(data_dir) / "splits" / f"{TASK_NAME}__default.json", split),
        (registry.task_file(TASK_NAME, data_dir), registry.task_file_text(info)),
    ):
        if path.exists() and path.read_text(encoding="utf-8") != text:
            raise UserError(f"{path}: already holds a different {TASK_NAME} dataset; choose another directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
