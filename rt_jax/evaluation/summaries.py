"""Per-epoch summaries of a model's completions, beside accuracy, as the original records them:
how many contain the gold answer anywhere, followed the format (the answer prefix), ended before
the token limit; and how long the generated rationales are (mean, median, p90, in the student's
generated tokens). Computed from prediction records alone (rt_jax.evaluation.predictions), so the
report and a test can recompute them from the saved files."""

from __future__ import annotations

import math
import statistics
from typing import Sequence

from rt_jax.tasks.scoring import answers_match, normalize_gold

SUMMARY_KEYS = ("contains_gold", "followed_format", "ended", "length_mean", "length_median", "length_p90")


def contains_gold(task: str, candidates: Sequence, gold_answer: str) -> bool:
    """Any answer-shaped part of the completion (a Score's candidates) equals the gold answer."""
    gold = normalize_gold(task, gold_answer)
    return any(answers_match(task, c, gold) for c in candidates)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linear between closest ranks (numpy's default)."""
    ordered = sorted(values)
    at = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(at), math.ceil(at)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


def summarize(records: Sequence) -> dict[str, float]:
    """SUMMARY_KEYS over the first completion of each question (as accuracy): shares in percent,
    lengths in tokens. Records lacking the fields (saved before they existed) give {}."""
    firsts = [r for r in records if r.completion_index == 0]
    if not firsts or any("num_tokens" not in r.extra for r in firsts):
        return {}
    lengths = [r.extra["num_tokens"] for r in firsts]
    n = len(firsts)
    return {
        "contains_gold": 100.0 * sum(bool(r.extra.get("contains_gold")) for r in firsts) / n,
        "followed_format": 100.0 * sum(bool(r.extra.get("followed_format")) for r in firsts) / n,
        "ended": 100.0 * sum(r.reasoning_finish_reason != "length" for r in firsts) / n,
        "length_mean": statistics.fmean(lengths),
        "length_median": float(statistics.median(lengths)),
        "length_p90": float(percentile(lengths, 90)),
    }
