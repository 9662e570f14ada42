"""Readers: one raw source file -> its rows of the unified dataset, as (question, answer).

Each reader reproduces Ho et al.'s data-preparation notebook (reasoning-teacher,
notebooks/old/Data Preparation.ipynb) exactly: question wording, option verbalisation, the
seeded option shuffle of date_understanding. A malformed row raises a one-line UserError that
names the file, the row (and line for JSON lines files) and what was expected."""

import contextlib
import json
import pathlib
from typing import Any, Iterator

import numpy as np

from rt_jax.errors import UserError

Rows = list[tuple[str, str]]


def _read_json(path: pathlib.Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise UserError(
            f"{path}:{e.lineno}: not valid JSON ({e.msg}); expected the original, untruncated file"
        ) from None
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text ({e.reason}); expected a JSON file") from None


def _read_jsonl(path: pathlib.Path) -> Iterator[tuple[int, Any]]:
    """(line number, object) for every non-empty line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text ({e.reason}); expected a JSON lines file") from None
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield line_no, json.loads(line)
        except json.JSONDecodeError as e:
            raise UserError(f"{path}:{line_no}: not valid JSON ({e.msg}); expected one JSON object per line") from None


@contextlib.contextmanager
def _row(path: pathlib.Path, where: str, expected: str):
    """Turns a missing field / wrong type in one row into a UserError naming that row."""
    try:
        yield
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as e:
        raise UserError(f"{path}:{where}: malformed entry ({type(e).__name__}: {e}); expected {expected}") from None


def _list_of_rows(data: Any, path: pathlib.Path, key: str | None = None) -> list:
    if key is not None:
        data = data.get(key) if isinstance(data, dict) else None
    if not isinstance(data, list):
        where = f'a list under "{key}"' if key else "a JSON list"
        raise UserError(f"{path}: expected {where} at the top level")
    return data


def verbalize_choices(question: str, choices: list[str]) -> str:
    """`question Answer choices: (A) a, (B) b.` with each option stripped."""
    options = ", ".join(f"({chr(ord('A') + i)}) {c.strip()}" for i, c in enumerate(choices))
    return f"{question} Answer choices: {options}."


def _map_rows(path: pathlib.Path, expected: str, make_row, key: str | None = None) -> Rows:
    """`make_row` over every entry of a JSON list (or of the list under `key`)."""
    rows = []
    for i, entry in enumerate(_list_of_rows(_read_json(path), path, key)):
        with _row(path, f"{key}[{i}]" if key else f"entry {i}", expected):
            rows.append(make_row(entry))
    return rows


def read_single_eq(path: pathlib.Path) -> Rows:
    return _map_rows(
        path, "{sQuestion: str, lSolutions: [number]}", lambda s: (str(s["sQuestion"]), str(s["lSolutions"][0]))
    )


def read_addsub(path: pathlib.Path) -> Rows:
    return _map_rows(
        path, "{sQuestion: str, lSolutions: [str]}", lambda s: (s["sQuestion"].strip(), str(s["lSolutions"][0]))
    )


def read_multiarith(path: pathlib.Path) -> Rows:
    return _map_rows(
        path,
        "{sQuestion: str, lSolutions: [integer]}",
        lambda s: (s["sQuestion"].strip(), str(int(s["lSolutions"][0]))),
    )


def read_svamp(path: pathlib.Path) -> Rows:
    return _map_rows(
        path,
        "{Body: str, Question: str, Answer: number}",
        lambda s: (s["Body"].strip() + " " + s["Question"].strip(), str(s["Answer"])),
    )


def read_gsm8k(path: pathlib.Path) -> Rows:
    rows = []
    for line_no, s in _read_jsonl(path):
        with _row(path, str(line_no), '{question: str, answer: str with one "#### <answer>"}'):
            solution = s["answer"]
            if solution.count("####") != 1:
                raise ValueError('no single "####" in answer')
            # The notebook skips "#### " (5 characters); the answer may keep its commas.
            rows.append((s["question"], solution[solution.find("####") + 5 :]))
    return rows


def read_aqua(path: pathlib.Path) -> Rows:
    rows = []
    for line_no, s in _read_jsonl(path):
        with _row(path, str(line_no), '{question: str, options: ["A)..", .., "E).."], correct: A-E}'):
            options = s["options"]
            if len(options) != 5 or any(o[:2] != f"{chr(65 + j)})" for j, o in enumerate(options)):
                raise ValueError("options are not A) .. E)")
            if s["correct"] not in "ABCDE" or len(s["correct"]) != 1:
                raise ValueError(f"correct={s['correct']!r}")
            rows.append((verbalize_choices(s["question"].strip(), [o[2:] for o in options]), s["correct"]))
    return rows


def read_commonsense_qa(path: pathlib.Path) -> Rows:
    rows = []
    for line_no, s in _read_jsonl(path):
        with _row(path, str(line_no), "{answerKey: A-E, question: {stem, choices: [{label, text}] x5}}"):
            choices = [c["text"] for c in s["question"]["choices"]]
            if len(choices) != 5 or s["answerKey"] not in "ABCDE" or len(s["answerKey"]) != 1:
                raise ValueError("expected 5 choices and an answerKey in A-E")
            rows.append((verbalize_choices(s["question"]["stem"].strip(), choices), s["answerKey"]))
    return rows


def _read_bigbench_choice(path: pathlib.Path, shuffle: bool, strip_input: bool) -> Rows:
    """BIG-bench multiple choice: options in target_scores order (or shuffled by one
    RandomState(0) used in sequence: option j goes to slot perm[j]), trailing "." dropped."""
    examples = _list_of_rows(_read_json(path), path, key="examples")
    state = np.random.RandomState(0) if shuffle else None
    rows = []
    for i, ex in enumerate(examples):
        with _row(path, f"examples[{i}]", "{input: str, target_scores: {option: 0 or 1}} with one correct option"):
            scores = list(ex["target_scores"].items())
            slots = state.permutation(len(scores)) if shuffle else np.arange(len(scores))
            choices: list[str] = [""] * len(scores)
            correct = [int(slots[j]) for j, (_, score) in enumerate(scores) if score]
            if len(correct) != 1 or len(scores) < 2:
                raise ValueError(f"{len(correct)} correct options out of {len(scores)}")
            for j, (option, _) in enumerate(scores):
                choices[slots[j]] = option[:-1] if option.endswith(".") else option
            question = ex["input"].strip() if strip_input else ex["input"]
            rows.append((verbalize_choices(question + "\nWhich choice is true?", choices), chr(65 + correct[0])))
    return rows


def read_date_understanding(path: pathlib.Path) -> Rows:
    return _read_bigbench_choice(path, shuffle=True, strip_input=True)


def read_tracking_shuffled_objects(path: pathlib.Path) -> Rows:
    # The authors' saved file keeps the input's trailing space (their notebook strips it).
    return _read_bigbench_choice(path, shuffle=False, strip_input=False)


def _question_answer(ex) -> tuple[str, str]:
    if not isinstance(ex["question"], str) or not isinstance(ex["answer"], str):
        raise TypeError("question and answer must be strings")
    return ex["question"], ex["answer"]


def _read_examples(path: pathlib.Path) -> Rows:
    return _map_rows(path, "{question: str, answer: str}", _question_answer, key="examples")


read_coin_flip = _read_examples
read_last_letter_concatenation = _read_examples


def read_question_answer_list(path: pathlib.Path) -> Rows:
    """A JSON list of {question, answer}: the rows of a task written into a data_dir."""
    return _map_rows(path, "{question: str, answer: str}", _question_answer)


def _yes_or_no(ex) -> tuple[str, str]:
    scores = ex["target_scores"]
    if scores["Yes"] == scores["No"]:
        raise ValueError("exactly one of Yes/No must score 1")
    return ex["input"].strip(), "Yes" if scores["Yes"] == 1 else "No"


def read_strategy_qa(path: pathlib.Path) -> Rows:
    return _map_rows(path, '{input: str, target_scores: {"Yes": 0/1, "No": 0/1}}', _yes_or_no, key="examples")
