"""Parser of Kojima et al.'s Zero-shot-CoT run logs (`log/<name>_zero_shot_cot.log`).

A log is a `Namespace(...)` header (which holds the answer trigger of the run) and one block per
question:

    *************************
    <k>st data
    1_th_sampling
    Q: <question, may span lines>
    A: Let's think step by step.<rationale> <trigger><answer-step text>
    pred_before : <answer-step text, raw or stripped>
    pred_after : ...
    pred_list : [...]
    pred_mode : ...
    GT : <gold>
    *************************

The run printed `prompt + rationale + " " + trigger + answer_text` in one go, so the split between
rationale and answer text is where `" " + trigger` occurs; when the trigger occurs more than once,
the `pred_before` echo (raw in some logs, stripped with ':' removed in others) picks the split.
"""

from __future__ import annotations

import ast
import dataclasses
import pathlib
import re

# Log file stem -> dataset key (see shared/data/README.md).
LOG_NAMES = {
    "singleeq": "single_eq",
    "addsub": "addsub",
    "multiarith": "multiarith",
    "gsm8k": "gsm8k",
    "aqua": "aqua",
    "svamp": "svamp",
    "date_understanding": "date_understanding",
    "shuffled_objects": "tracking_shuffled_objects",
    "last_letters": "last_letter_concatenation",
    "coin_flip": "coin_flip",
    "commonsensqa": "commonsense_qa",
    "strategyqa": "strategy_qa",
}
LOG_SUFFIX = "_zero_shot_cot.log"

_BLOCK = re.compile(r"^\*{25}\n(\d+)st data\n1_th_sampling\nQ: ", re.M)
_BLOCK_END = re.compile(r"\nGT : (.*)\n\*{25}$", re.M)


class LogFormatError(ValueError):
    """A log or one of its blocks does not have the expected shape."""


@dataclasses.dataclass(frozen=True)
class LogHeader:
    dataset: str  # Kojima's dataset name, e.g. "bigbench_date"
    model: str
    cot_trigger: str  # "Let's think step by step."
    answer_trigger: str  # e.g. "\nTherefore, the answer (arabic numerals) is"
    max_length_cot: int
    max_length_direct: int
    reported_accuracy: float | None  # the "accuracy : <pct>" line


@dataclasses.dataclass(frozen=True)
class LogBlock:
    line: int  # 1-based line of the block's opening rule in the file
    data_number: int  # "<k>st data" (the shuffled loader order, not the dataset order)
    question: str
    reasoning_prompt: str
    rationale: str
    answer_prompt: str
    answer_text: str
    pred_before: str
    pred_after: str
    pred_mode: str
    gold: str


def _namespace_value(header: str, name: str):
    m = re.search(rf"[(, ]{name}=('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[\w.]+)", header)
    if m is None:
        raise LogFormatError(f"header has no {name}=")
    value = m.group(1)
    return ast.literal_eval(value) if value[0] in "'\"" or value[0].isdigit() else value


def parse_header(text: str) -> LogHeader:
    first = text.find("Namespace(")
    if first < 0:
        raise LogFormatError("no Namespace(...) header line")
    header = text[first : text.find("\n", first)]
    acc = re.search(r"^accuracy : ([0-9.]+)$", text, re.M)
    return LogHeader(
        dataset=_namespace_value(header, "dataset"),
        model=_namespace_value(header, "model"),
        cot_trigger=_namespace_value(header, "cot_trigger"),
        answer_trigger=_namespace_value(header, "direct_answer_trigger"),
        max_length_cot=_namespace_value(header, "max_length_cot"),
        max_length_direct=_namespace_value(header, "max_length_direct"),
        reported_accuracy=float(acc.group(1)) if acc else None,
    )


def _echo_matches(answer_text: str, pred_before: str) -> bool:
    """Either echo style: raw, or stripped with ':' removed."""
    return answer_text == pred_before or answer_text.replace(":", "").strip() == pred_before.replace(":", "").strip()


def _parse_block(body: str, header: LogHeader) -> dict:
    """Fields of one block; `body` runs from the question's first character to 'GT : ...'."""
    a_marker = "\nA: " + header.cot_trigger
    q_end = body.find(a_marker)
    if q_end < 0:
        raise LogFormatError(f"no line starting with 'A: {header.cot_trigger}'")
    question = body[:q_end]
    tail_start = body.rfind("\npred_after : ")
    pb_start = body.rfind("\npred_before : ", 0, tail_start)
    if tail_start < 0 or pb_start < 0:
        raise LogFormatError("no 'pred_before :' / 'pred_after :' lines")
    pred_before = body[pb_start + len("\npred_before : ") : tail_start]
    after = dict(re.findall(r"^(pred_after|pred_mode) : (.*)$", body[tail_start:], re.M))
    printed = body[q_end + len(a_marker) : pb_start]  # rationale + " " + trigger + answer text
    glue = " " + header.answer_trigger
    splits = [m.start() for m in re.finditer(re.escape(glue), printed)]
    if not splits:
        raise LogFormatError(f"answer trigger {header.answer_trigger!r} not found after the rationale")
    matching = [s for s in splits if _echo_matches(printed[s + len(glue) :], pred_before)]
    if not matching:
        raise LogFormatError("the text after the answer trigger does not match 'pred_before'")
    cut = matching[0]
    reasoning_prompt = "Q: " + question + a_marker
    rationale = printed[:cut]
    return dict(
        question=question,
        reasoning_prompt=reasoning_prompt,
        rationale=rationale,
        answer_prompt=reasoning_prompt + rationale + glue,
        answer_text=printed[cut + len(glue) :],
        pred_before=pred_before,
        pred_after=after.get("pred_after", ""),
        pred_mode=after.get("pred_mode", ""),
    )


def parse_log(path: str | pathlib.Path, problems: list[str]) -> tuple[LogHeader, list[LogBlock]]:
    """Header and well-formed blocks of a log; each malformed block is reported as `file:line: why`."""
    path = pathlib.Path(path)
    text = path.read_text(encoding="utf-8")
    try:
        header = parse_header(text)
    except (LogFormatError, ValueError, SyntaxError) as e:
        raise LogFormatError(f"{path}:1: {e}") from None
    starts = list(_BLOCK.finditer(text))
    blocks = []
    line, counted_to = 1, 0
    for i, m in enumerate(starts):
        line += text.count("\n", counted_to, m.start())
        counted_to = m.start()
        limit = starts[i + 1].start() if i + 1 < len(starts) else len(text)
        end = _BLOCK_END.search(text, m.end(), limit)
        if end is None:
            problems.append(f"{path}:{line}: block without a 'GT :' line and closing rule, skipped")
            continue
        try:
            fields = _parse_block(text[m.end() : end.start() + 1], header)
        except LogFormatError as e:
            problems.append(f"{path}:{line}: {e}, skipped")
            continue
        blocks.append(LogBlock(line=line, data_number=int(m.group(1)), gold=end.group(1), **fields))
    unrecognised = len(re.findall(r"^1_th_sampling$", text, re.M)) - len(starts)
    if not starts:
        problems.append(f"{path}: no question blocks found")
    elif unrecognised > 0:
        problems.append(f"{path}: {unrecognised} block(s) without the '<k>st data' opening, skipped")
    return header, blocks
