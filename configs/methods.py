"""The paper's methods and what each one changes in a run's config. (Which teacher-cache
shard and how many rationales a method trains on is rt_jax.data.pairs' `rationale_source`.)

- zs: zero-shot, the student answers the question directly (no training).
- zs_cot: Zero-shot-CoT, "Let's think step by step." (no training).
- fs_cot: Few-shot-CoT with the paper's exemplars (no training).
- ft: vanilla fine-tuning on `question ###` -> ` answer`.
- ft_cot: Fine-tune-CoT on the greedy teacher's correct rationales (D = 1).
- ft_cot_t70_{D}aug: diverse reasoning, D teacher samples at temperature 0.7 per question.
"""
import re

PROMPTING = ("zs", "zs_cot", "fs_cot")  # evaluated without training
FINE_TUNING = ("ft", "ft_cot")
DIVERSE = re.compile(r"^ft_cot_t70_(\d+)aug$")
MAX_DEGREE = 64  # the paper's largest D (the teacher cache holds 64 samples per question)
NAMES = PROMPTING + FINE_TUNING + ("ft_cot_t70_{D}aug (D=1..64)",)

# Answers alone are short; rationales are cut at the teacher's 128-token budget plus the answer.
ANSWER_TOKENS = 16
RATIONALE_TOKENS = 128 + ANSWER_TOKENS


def degree(method: str) -> int | None:
    """D of a diverse-reasoning method; None for every other method or a D out of range."""
    m = DIVERSE.match(method)
    if not m or not 1 <= int(m.group(1)) <= MAX_DEGREE:
        return None
    return int(m.group(1))


def is_known(method: str) -> bool:
    return method in PROMPTING + FINE_TUNING or degree(method) is not None


def overrides(method: str) -> tuple:
    """(dotted config key, value) pairs for `method` (assumed known)."""
    d = degree(method)
    if method in PROMPTING:
        # No training; zero-shot answers are short, CoT answers need the rationale budget.
        return (("train.num_epochs", 0), ("eval.max_new_tokens", ANSWER_TOKENS if method == "zs" else RATIONALE_TOKENS))
    if method == "ft":
        return (("eval.max_new_tokens", ANSWER_TOKENS),)
    if method == "ft_cot":
        return (("num_rationales", 1), ("eval.max_new_tokens", RATIONALE_TOKENS))
    return (("num_rationales", d), ("eval.max_new_tokens", RATIONALE_TOKENS))
