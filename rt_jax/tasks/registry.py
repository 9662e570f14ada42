"""The 12 tasks of the paper: their source files (parts, in dataset order), answer kind and
Zero-shot-CoT answer trigger. Paper names everywhere a user sees them."""

import dataclasses
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


def task_info(task: str) -> TaskInfo:
    """The registry entry of `task`; a UserError naming the known keys otherwise."""
    try:
        return TASK_INFO[task]
    except (KeyError, TypeError):
        raise UserError(f"unknown task {task!r}; expected one of: {', '.join(TASKS)}") from None


def register_task(info: TaskInfo) -> None:
    """Adds a task beyond the paper's 12 (the offline demo's synthetic `arith_small`), so that
    load_dataset, load_split and score know it; TASKS stays the paper's 12."""
    if info.key in TASKS:
        raise ValueError(f"{info.key!r} is a paper task; it cannot be replaced")
    TASK_INFO[info.key] = info
