"""Answer extraction and scoring, as the paper scored (reasoning-teacher's Evaluator), and
Kojima et al.'s answer cleansing of Zero-shot-CoT answer steps (to score their logs).

Candidates are every substring of the completion that has the task's answer form. With an
answer prefix (e.g. "-->" for Fine-tune-CoT) found in the completion, the prediction is the
first candidate after it; without it, the last candidate; with no prefix at all (zero-shot,
vanilla fine-tuning), the first candidate."""

import dataclasses
import re

from rt_jax.errors import UserError
from rt_jax.tasks.registry import task_info

Prediction = str | float | None

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_KOJIMA_NUMBER = re.compile(r"-?\d+\.?\d*")  # Kojima's looser pattern: "5." is a candidate
_YES_NO_SEPARATORS = re.compile(r"[\"'\n.\s:,]")
_LETTERS_NOISE = re.compile(r"[\"'\n.\s]")


@dataclasses.dataclass(frozen=True)
class Score:
    prediction: Prediction  # float for single_eq/addsub/svamp, else str; None when no candidate
    candidates: tuple
    correct: bool
    followed_format: bool  # the answer prefix occurs in the completion (True without a prefix)


def _candidate_strings(task: str, text: str, number: re.Pattern = _NUMBER) -> list[str]:
    info = task_info(task)
    if info.answer_kind == "choice":
        return re.findall(f"[{info.choices}]", text)
    if info.answer_kind in ("float", "integer"):
        return number.findall(text.replace(",", ""))
    if info.answer_kind == "yes_no":
        return [w for w in _YES_NO_SEPARATORS.sub(" ", text.lower()).split(" ") if w in ("yes", "no")]
    return [_LETTERS_NOISE.sub("", text)]  # last letters: the whole text, minus quotes/space/periods


def extract_candidates(task: str, text: str) -> list[Prediction]:
    """Every answer-shaped substring of `text`, in order (floats for float tasks)."""
    found = _candidate_strings(task, text)
    if task_info(task).answer_kind == "float":
        return [float(s) for s in found]
    return found


def normalize_gold(task: str, gold: str) -> Prediction:
    """The gold answer as compared: commas stripped for numbers, float for float tasks,
    lower case for strategy_qa."""
    kind = task_info(task).answer_kind
    gold = str(gold)
    if kind in ("float", "integer"):
        gold = gold.replace(",", "")
    if kind == "yes_no":
        gold = gold.lower()
    if kind == "float":
        try:
            return float(gold)
        except ValueError:
            raise UserError(f"{task}: gold answer {gold!r} is not a number; expected e.g. '43.0'") from None
    return gold


def answers_match(task: str, prediction: Prediction, gold: Prediction) -> bool:
    if prediction is None:
        return False
    if task_info(task).answer_kind == "float":
        return abs(prediction - gold) <= 1e-6
    return prediction == gold


def score(task: str, completion: str, gold_answer: str, answer_prefix: str | None = None) -> Score:
    """Scores one completion against the gold answer of the unified dataset."""
    completion = str(completion)
    gold = normalize_gold(task, gold_answer)
    at = completion.find(answer_prefix) if answer_prefix else -1
    if at >= 0:
        candidates = extract_candidates(task, completion[at + len(answer_prefix) :])
        pick_first = True
    else:
        candidates = extract_candidates(task, completion)
        pick_first = not answer_prefix
    prediction = (candidates[0] if pick_first else candidates[-1]) if candidates else None
    return Score(
        prediction,
        tuple(candidates),
        answers_match(task, prediction, gold),
        followed_format=not answer_prefix or at >= 0,
    )


def kojima_cleanse(task: str, answer_step: str) -> str:
    """Kojima et al.'s `answer_cleansing` for zero_shot / zero_shot_cot: the first candidate of
    the answer-step text, without a trailing "."; "" when there is none (their `pred_after`)."""
    found = _candidate_strings(task, str(answer_step), number=_KOJIMA_NUMBER)
    prediction = found[0] if found else ""
    return prediction[:-1] if prediction.endswith(".") else prediction


def kojima_gold(task: str, gold_answer: str) -> str:
    """The gold answer as Kojima's logs write it (`GT :`): numbers without a trailing ".0",
    strategy_qa in lower case."""
    kind = task_info(task).answer_kind
    if kind == "float":
        value = float(gold_answer)
        return str(int(value)) if value == int(value) else str(value)
    return gold_answer.lower() if kind == "yes_no" else gold_answer
