"""Import Kojima et al.'s Zero-shot-CoT logs (text-davinci-002, greedy) into the rationale cache.

Blocks are matched to unified-dataset samples by question text, because the log order is the
shuffled loader order. The logs spell questions differently ("Answer Choices: (A) x (B) y" without
commas; date and object tracking without/with "Which choice is true ?"), and the date log shuffled
the options, so a question's key is its normalised stem plus the *set* of its normalised options, and
option letters are carried from the log to the dataset through the option text (`letter_map`).
"""

from __future__ import annotations

import dataclasses
import pathlib
import re

from rt_jax.errors import UserError
from rt_jax.teacher.kojima_log import LOG_NAMES, LOG_SUFFIX, LogBlock, LogFormatError, parse_log
from rt_jax.teacher.record import Record
from rt_jax.teacher.store import Conflict, RationaleStore

KOJIMA_TEACHER = "text-davinci-002"  # Kojima's `model='gpt3-xl'` maps to this engine
# Kojima et al.'s --model names -> the OpenAI engines their decoder called.
KOJIMA_ENGINES = {
    "gpt3": "text-ada-001",
    "gpt3-medium": "text-babbage-001",
    "gpt3-large": "text-curie-001",
    "gpt3-xl": "text-davinci-002",
}
KOJIMA_METHOD = "zs_cot"
LOG_DIR = "raw/kojima_zero_shot_cot/log"

_CHOICES = re.compile(r"answer choices:", re.I)
_OPTION = re.compile(r"\(([A-F])\)\s*")
_TRAILING_QUESTION = "whichchoiceistrue"
_NOT_ALNUM = re.compile(r"[^0-9a-z]")


def _norm(text: str) -> str:
    return _NOT_ALNUM.sub("", text.lower())


def split_choices(question: str) -> tuple[str, list[tuple[str, str]]]:
    """(stem, [(letter, option text), ...]); no options for open questions."""
    found = list(_CHOICES.finditer(question))
    if not found:
        return question, []
    stem, rest = question[: found[-1].start()], question[found[-1].end() :]
    pieces = _OPTION.split(rest)  # ["", "A", "x ", "B", "y", ...]
    return stem, [(pieces[i], pieces[i + 1]) for i in range(1, len(pieces) - 1, 2)]


def question_key(question: str) -> tuple[str, tuple[str, ...]]:
    stem, options = split_choices(question)
    stem = _norm(stem)
    if stem.endswith(_TRAILING_QUESTION):
        stem = stem[: -len(_TRAILING_QUESTION)]
    return stem, tuple(sorted(_norm(text) for _, text in options))


def letter_map(log_question: str, dataset_question: str) -> dict[str, str]:
    """Log letter -> dataset letter of the same option text. Options in the same order map by
    position (some AQuA/CSQA questions repeat an option text); shuffled ones through their text."""
    log_options, ds_options = split_choices(log_question)[1], split_choices(dataset_question)[1]
    if [_norm(t) for _, t in log_options] == [_norm(t) for _, t in ds_options]:
        return {a: b for (a, _), (b, _) in zip(log_options, ds_options)}
    by_text = {_norm(text): letter for letter, text in ds_options}
    return {letter: by_text[_norm(text)] for letter, text in log_options if _norm(text) in by_text}


def _gold_agrees(block_gold: str, answer: str, mapping: dict[str, str]) -> bool:
    if mapping:
        return mapping.get(block_gold) == answer
    try:
        return float(block_gold.replace(",", "")) == float(answer.replace(",", ""))
    except ValueError:
        return block_gold.strip().lower() == answer.strip().lower()


@dataclasses.dataclass
class ImportReport:
    task: str
    log: str
    blocks: int = 0
    matched: int = 0
    written: int = 0
    already_cached: int = 0
    gold_disagrees: int = 0  # the log's GT differs from the unified dataset's answer
    kojima_accuracy: float | None = None  # as the log reports it
    accuracy: float | None = None  # our scorer over the matched blocks
    train_with_correct: int = 0  # training samples with a correct rationale
    train_matched: int = 0  # training samples the log has a block of


def match_blocks(task: str, blocks: list[LogBlock], dataset, log_path, problems: list[str]):
    """[(block, example, letter_map)] for every block that matches one unused sample."""
    index: dict[tuple, list[int]] = {}
    for ex in dataset:
        index.setdefault(question_key(ex.question), []).append(ex.sample_index)
    used: set[int] = set()
    matched = []
    for block in blocks:
        key = question_key(block.question)
        candidates = [i for i in index.get(key, []) if i not in used]
        if not candidates:
            why = (
                "its question is not in the dataset"
                if key not in index
                else "every sample with its question is already matched"
            )
            problems.append(f"{log_path}:{block.line}: block '{block.data_number}st data' unmatched: {why}")
            continue
        # Repeated questions (MultiArith has 20): prefer a sample whose gold is the log's GT.
        maps = {i: letter_map(block.question, dataset[i].question) for i in candidates}
        agreeing = [i for i in candidates if _gold_agrees(block.gold, dataset[i].answer, maps[i])]
        chosen = (agreeing or candidates)[0]
        used.add(chosen)
        matched.append((block, dataset[chosen], maps[chosen]))
    return matched


def block_record(
    task: str, block: LogBlock, example, mapping: dict[str, str], log_name: str, score, teacher: str = KOJIMA_TEACHER
) -> Record:
    """The cache record of one block, scored by our scorer against the unified gold answer.
    Multiple-choice letters are scored in the log's letters and the prediction mapped back."""
    extra = {
        "source": "kojima_zero_shot_cot",
        "log": log_name,
        "line": block.line,
        "kojima_pred": block.pred_mode,
        "kojima_gold": block.gold,
    }
    if mapping:
        inverse = {v: k for k, v in mapping.items()}
        result = score(task, block.answer_text, inverse.get(example.answer, example.answer))
        prediction = None if result.prediction is None else mapping.get(result.prediction, result.prediction)
        if any(k != v for k, v in mapping.items()):
            extra["letter_map"] = mapping  # the log's option letters -> the dataset's
    else:
        result = score(task, block.answer_text, example.answer)
        prediction = result.prediction
    return Record(
        teacher=teacher,
        method=KOJIMA_METHOD,
        task=task,
        sample_index=example.sample_index,
        completion_index=0,
        reasoning_prompt=block.reasoning_prompt,
        reasoning_completion=block.rationale,
        answer_prompt=block.answer_prompt,
        answer_completion=block.answer_text,
        reasoning_finish_reason=None,
        answer_finish_reason=None,
        prediction=None if prediction is None else str(prediction),
        correct=bool(result.correct),
        extra=extra,
    )


def import_log(store: RationaleStore, log_path, data_dir, problems: list[str]) -> ImportReport:
    """Parse, match, score and append one log; bad blocks are reported in `problems` and skipped."""
    from rt_jax.tasks import load_dataset, load_split, score

    log_path = pathlib.Path(log_path)
    stem = log_path.name[: -len(LOG_SUFFIX)] if log_path.name.endswith(LOG_SUFFIX) else None
    if stem not in LOG_NAMES:
        raise UserError(f"{log_path}: expected a file named <name>{LOG_SUFFIX} with <name> one of {sorted(LOG_NAMES)}")
    task = LOG_NAMES[stem]
    try:
        header, blocks = parse_log(log_path, problems)
    except LogFormatError as e:
        problems.append(f"{e}; log skipped")
        return ImportReport(task, log_path.name)
    dataset = load_dataset(task, data_dir)
    train = set(load_split(task, data_dir).train)
    report = ImportReport(task, log_path.name, blocks=len(blocks), kojima_accuracy=header.reported_accuracy)
    matched = match_blocks(task, blocks, dataset, log_path, problems)
    report.matched = len(matched)
    correct_train, correct = set(), 0
    teacher = KOJIMA_ENGINES.get(header.model, header.model)
    with store.writer(teacher, KOJIMA_METHOD, task, problems) as writer:
        for block, example, mapping in matched:
            report.gold_disagrees += not _gold_agrees(block.gold, example.answer, mapping)
            record = block_record(task, block, example, mapping, log_path.name, score, teacher)
            correct += record.correct
            report.train_matched += example.sample_index in train
            if record.correct and example.sample_index in train:
                correct_train.add(example.sample_index)
            try:
                if writer.append(record):
                    report.written += 1
                else:
                    report.already_cached += 1
            except Conflict as e:
                problems.append(f"{log_path}:{block.line}: {e}")
    report.accuracy = 100.0 * correct / len(matched) if matched else None
    report.train_with_correct = len(correct_train)
    return report


def kojima_logs(log_dir) -> list[pathlib.Path]:
    """The 12 Zero-shot-CoT logs under `log_dir` (a data dir's log folder or the folder itself)."""
    log_dir = pathlib.Path(log_dir)
    if (log_dir / LOG_DIR).is_dir():
        log_dir = log_dir / LOG_DIR
    logs = sorted(p for p in log_dir.glob(f"*{LOG_SUFFIX}") if p.name[: -len(LOG_SUFFIX)] in LOG_NAMES)
    if not logs:
        raise UserError(f"{log_dir}: no <name>{LOG_SUFFIX} files (expected Kojima et al.'s log folder)")
    return logs


def what_the_logs_lack(reports: list[ImportReport], store: RationaleStore) -> list[str]:
    """Notes, one line each, on the training data the imported logs cannot give: tasks left with
    no training rationale (Kojima's logs of gsm8k, aqua and commonsense_qa cover only their test
    questions) and the temperature-0.7 samples of diverse reasoning (the logs are greedy), with
    the ways to get them."""
    from rt_jax.teacher.generate import method_name

    get = "import the original's teacher files (import_rt --rt_files=...) or generate them (teacher generate"
    notes = []
    test_only = [r.task for r in reports if r.matched and not r.train_matched]
    if test_only:
        notes.append(
            f"note: 0 training rationales for {', '.join(test_only)}: Kojima's logs cover only their test "
            f"questions; for Fine-tune-CoT {get} --tasks={','.join(test_only)})"
        )
    none_correct = [r.task for r in reports if r.train_matched and not r.train_with_correct]
    if none_correct:
        notes.append(
            f"note: 0 correct training rationales for {', '.join(none_correct)}; for Fine-tune-CoT {get} "
            f"--tasks={','.join(none_correct)})"
        )
    sampled = method_name(0.7)
    with_samples = {task for _, method, task in store.shards() if method == sampled}
    no_samples = [r.task for r in reports if r.task not in with_samples]
    if no_samples:
        notes.append(
            f"note: no temperature-0.7 samples ({sampled}) for {', '.join(no_samples)}: Kojima's logs are greedy; "
            f"for diverse reasoning (ft_cot_t70_<D>aug) {get} --temperature=0.7 --num_completions=<D>)"
        )
    return notes
