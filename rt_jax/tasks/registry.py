"""The 12 tasks of the paper: their source files (parts, in dataset order), answer kind and
Zero-shot-CoT answer trigger. Paper names everywhere a user sees them.

Beyond the paper's 12, a task written into a data_dir (the offline demo's `arith_small`,
rt_jax.tasks.synthetic) describes itself in a task file, `<data_dir>/tasks/<task>.json`;
`task_info(task, data_dir)` reads it, so any process given that data_dir knows the task."""

import dataclasses
import json
import os
import pathlib
from typing import Callable

from rt_jax.errors import UserError
from rt_jax.tasks import readers
from rt_jax.tasks.sources import KOJIMA_DIR

GSM8K_TRAIN = "raw/openai_grade_school_math/grade_school_math/data/train.jsonl"
AQUA_TRAIN = "raw/deepmind_aqua/train.json"


@dataclasses.dataclass(frozen=True)
class Part:
    """One source file and how many rows it gives: sample indices of later parts stay put
    even when this file is missing (AQuA's test part is 97467..97720 without its train file)."""

    path: str
    rows: int
    read: Callable


@dataclasses.dataclass(frozen=True)
class TaskInfo:
    key: str
    parts: tuple[Part, ...]
    answer_kind: str  # "float" | "integer" | "choice" | "yes_no" | "letters"
    trigger: str  # Kojima et al.'s answer-extraction trigger for Zero-shot-CoT
    kojima_log: str  # name of Kojima et al.'s log files, <kojima_log>_zero_shot_cot.log
    choices: str = ""  # option letters of multiple-choice tasks

    @property
    def size(self) -> int:
        return sum(p.rows for p in self.parts)


_ARABIC = "\nTherefore, the answer (arabic numerals) is"
_YES_NO = "\nTherefore, the answer (Yes or No) is"


def _among(letters: str) -> str:
    return f"\nTherefore, among A through {letters[-1]}, the answer is"


def _one(path: str, rows: int, read: Callable) -> tuple[Part, ...]:
    return (Part(KOJIMA_DIR + path, rows, read),)


_INFOS = [
    TaskInfo("single_eq", _one("SingleEq/questions.json", 508, readers.read_single_eq), "float", _ARABIC, "singleeq"),
    TaskInfo("addsub", _one("AddSub/AddSub.json", 395, readers.read_addsub), "float", _ARABIC, "addsub"),
    TaskInfo(
        "multiarith", _one("MultiArith/MultiArith.json", 600, readers.read_multiarith), "integer", _ARABIC, "multiarith"
    ),
    TaskInfo(
        "gsm8k",
        (
            Part(GSM8K_TRAIN, 7473, readers.read_gsm8k),
            Part(KOJIMA_DIR + "grade-school-math/test.jsonl", 1319, readers.read_gsm8k),
        ),
        "integer",
        _ARABIC,
        "gsm8k",
    ),
    TaskInfo(
        "aqua",
        (Part(AQUA_TRAIN, 97467, readers.read_aqua), Part(KOJIMA_DIR + "AQuA/test.json", 254, readers.read_aqua)),
        "choice",
        _among("ABCDE"),
        "aqua",
        "ABCDE",
    ),
    TaskInfo("svamp", _one("SVAMP/SVAMP.json", 1000, readers.read_svamp), "float", _ARABIC, "svamp"),
    TaskInfo(
        "date_understanding",
        _one("Bigbench_Date/task.json", 369, readers.read_date_understanding),
        "choice",
        _among("ABCDEF"),
        "date_understanding",
        "ABCDEF",
    ),
    TaskInfo(
        "tracking_shuffled_objects",
        _one("Bigbench_object_tracking/task.json", 750, readers.read_tracking_shuffled_objects),
        "choice",
        _among("ABC"),
        "shuffled_objects",
        "ABC",
    ),
    TaskInfo(
        "last_letter_concatenation",
        _one("last_letters/last_letters.json", 500, readers.read_last_letter_concatenation),
        "letters",
        "\nTherefore, the answer is",
        "last_letters",
    ),
    TaskInfo(
        "coin_flip", _one("coin_flip/coin_flip.json", 500, readers.read_coin_flip), "yes_no", _YES_NO, "coin_flip"
    ),
    TaskInfo(
        "commonsense_qa",
        (
            Part(KOJIMA_DIR + "CommonsenseQA/train_rand_split.jsonl", 9741, readers.read_commonsense_qa),
            Part(KOJIMA_DIR + "CommonsenseQA/dev_rand_split.jsonl", 1221, readers.read_commonsense_qa),
        ),
        "choice",
        _among("ABCDE"),
        "commonsensqa",
        "ABCDE",
    ),
    TaskInfo(
        "strategy_qa", _one("StrategyQA/task.json", 2290, readers.read_strategy_qa), "yes_no", _YES_NO, "strategyqa"
    ),
]

TASK_INFO: dict[str, TaskInfo] = {info.key: info for info in _INFOS}
TASKS: tuple[str, ...] = tuple(TASK_INFO)


ANSWER_KINDS = ("float", "integer", "choice", "yes_no", "letters")


def task_file(task: str, data_dir: str | os.PathLike) -> pathlib.Path:
    """Where a task written into `data_dir` describes itself."""
    return pathlib.Path(data_dir) / "tasks" / f"{task}.json"


def task_file_text(info: TaskInfo) -> str:
    """The task file of a one-part task whose rows are a JSON list of {question, answer}
    (readers.read_question_answer_list), its path relative to the data_dir."""
    (part,) = info.parts
    fields = {"data_file": part.path, "rows": part.rows, "answer_kind": info.answer_kind, "trigger": info.trigger}
    return json.dumps({**fields, "choices": info.choices} if info.choices else fields, indent=1) + "\n"


def _read_task_file(task: str, data_dir: str | os.PathLike) -> TaskInfo:
    path = task_file(task, data_dir)
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not valid JSON ({e}); expected a task file written by rt_jax") from None
    expected = {"data_file": str, "rows": int, "answer_kind": str, "trigger": str}
    for key, kind in expected.items():
        if not isinstance(d, dict) or not isinstance(d.get(key), kind):
            raise UserError(f"{path}: field {key!r} missing or not a {kind.__name__}; expected {sorted(expected)}")
    if d["answer_kind"] not in ANSWER_KINDS:
        raise UserError(f"{path}: answer_kind {d['answer_kind']!r}; expected one of {', '.join(ANSWER_KINDS)}")
    if not (pathlib.Path(data_dir) / d["data_file"]).is_file():
        raise UserError(f"{path}: its data_file {pathlib.Path(data_dir) / d['data_file']} is missing")
    part = Part(d["data_file"], d["rows"], readers.read_question_answer_list)
    return TaskInfo(task, (part,), d["answer_kind"], d["trigger"], kojima_log="", choices=str(d.get("choices", "")))


def task_info(task: str, data_dir: str | os.PathLike | None = None) -> TaskInfo:
    """The registry entry of `task`: a paper task, or a task written into `data_dir` (read from
    its task file on every call with a data_dir, and remembered for calls without one). A
    UserError naming the known tasks otherwise."""
    if task in TASKS:
        return TASK_INFO[task]
    if data_dir is not None and isinstance(task, str) and task:
        path = task_file(task, data_dir)
        if not path.is_file():
            raise UserError(
                f"unknown task {task!r}; expected one of: {', '.join(TASKS)}, or a task written into the "
                f"data_dir ({path} not found; `python -m rt_jax.demo --out_dir=DIR` writes arith_small into DIR/data)"
            )
        TASK_INFO[task] = _read_task_file(task, data_dir)
    try:
        return TASK_INFO[task]
    except (KeyError, TypeError):
        raise UserError(f"unknown task {task!r}; expected one of: {', '.join(TASKS)}") from None
