"""The paper's published accuracies (packaged CSV), looked up with rt_jax's names.

The CSV names students by family and size (`gpt2`, `355M`) and diverse reasoning as one method
(`ft_cot_diverse`, D=64 on multiarith/svamp, D=8 elsewhere); rt_jax names students by checkpoint
(`gpt2-medium`) and diverse reasoning by its degree (`ft_cot_t70_8aug`). This module maps one
onto the other.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import importlib.resources
import re

from rt_jax import methods

# rt_jax student name -> (family in the CSV, size label in the paper).
STUDENT_SIZES = {
    "gpt2": ("gpt2", "124M"),
    "gpt2-medium": ("gpt2", "355M"),
    "gpt2-large": ("gpt2", "774M"),
    "gpt2-xl": ("gpt2", "1.5B"),
    "t5-small": ("t5", "60M"),
    "t5-base": ("t5", "220M"),
    "t5-large": ("t5", "700M"),
    "t5-3b": ("t5", "3B"),
    "flan-t5-small": ("flan_t5", "60M"),
    "flan-t5-base": ("flan_t5", "220M"),
    "flan-t5-large": ("flan_t5", "700M"),
    "flan-t5-xl": ("flan_t5", "3B"),
    # not in the paper (no published accuracies): sizes for the report's labels and order
    "smollm2-135m": ("smollm2", "135M"),
    "smollm2-360m": ("smollm2", "360M"),
    "smollm2-1.7b": ("smollm2", "1.7B"),
    "qwen2.5-0.5b": ("qwen2.5", "500M"),
    "qwen2.5-1.5b": ("qwen2.5", "1.5B"),
    "qwen2.5-3b": ("qwen2.5", "3B"),
    "llama-3.2-1b": ("llama3.2", "1.2B"),
    "llama-3.2-3b": ("llama3.2", "3.2B"),
}

# The degree D of the paper's diverse-reasoning entries.
PAPER_DIVERSE_D = {"multiarith": 64, "svamp": 64}
DEFAULT_PAPER_DIVERSE_D = 8


@dataclasses.dataclass(frozen=True)
class PaperResult:
    student_family: str
    method: str
    size: str
    task: str
    accuracy: float | None


def size_in_params(label: str) -> float:
    """'124M' -> 1.24e8, '1.5B' -> 1.5e9."""
    m = re.fullmatch(r"([\d.]+)([MB])", label)
    if not m:
        raise ValueError(f"not a size label: {label!r}")
    return float(m.group(1)) * (1e6 if m.group(2) == "M" else 1e9)


@functools.cache
def load_paper_results() -> tuple[PaperResult, ...]:
    """Every row of the packaged CSV."""
    text = importlib.resources.files("rt_jax").joinpath("resources/paper_results.csv").read_text("utf-8")
    rows = csv.DictReader(text.splitlines())
    return tuple(
        PaperResult(
            r["student_family"], r["method"], r["size"], r["task"], float(r["accuracy"]) if r["accuracy"] else None
        )
        for r in rows
    )


@functools.cache
def _index() -> dict[tuple[str, str, str, str], float | None]:
    return {(r.student_family, r.method, r.size, r.task): r.accuracy for r in load_paper_results()}


def paper_method(method: str, task: str) -> str | None:
    """The CSV's method name for an rt_jax method on `task`; None if the paper has no such run."""
    d = methods.degree(method)
    if d is None:
        return method
    return "ft_cot_diverse" if d == PAPER_DIVERSE_D.get(task, DEFAULT_PAPER_DIVERSE_D) else None


def paper_accuracy(student: str, method: str, task: str) -> float | None:
    """The published accuracy (percent) for this student, method and task, or None."""
    if student not in STUDENT_SIZES:
        return None
    name = paper_method(method, task)
    if name is None:
        return None
    family, size = STUDENT_SIZES[student]
    return _index().get((family, name, size, task))
