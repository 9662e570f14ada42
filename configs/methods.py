"""The paper's methods and what each one changes in a run's config. (Which teacher-cache
shard and how many rationales a method trains on is rt_jax.data.pairs' `rationale_source`.)

- zs: zero-shot, the student answers the question directly (no training).
- zs_cot: Zero-shot-CoT, "Let's think step by step." (no training).
- fs_cot: Few-shot-CoT with the paper's exemplars (no training).
- ft: vanilla fine-tuning on `question ###` -> ` answer`.
- ft_cot: Fine-tune-CoT on the greedy teacher's correct rationales (D = 1).
- ft_cot_t70_{D}aug: diverse reasoning, D teacher samples at temperature 0.7 per question.
- ft_cot_mt, ft_cot_t70_{D}aug_mt (beyond the paper): multi-task training as in Hsieh et al. 2023,
  "Distilling Step-by-Step": each rationale gives `[label] question` -> answer and `[rationale]
  question` -> rationale (weight: config.rationale_weight); evaluated on direct answers.
"""

from rt_jax.formats import diverse_degree

PROMPTING = ("zs", "zs_cot", "fs_cot")  # evaluated without training
FINE_TUNING = ("ft", "ft_cot")
MAX_DEGREE = 64  # the paper's largest D (the teacher cache holds 64 samples per question)
MULTITASK_SUFFIX = "_mt"
NAMES = PROMPTING + FINE_TUNING + ("ft_cot_t70_{D}aug (D=1..64)", "ft_cot_mt", "ft_cot_t70_{D}aug_mt")

# Answers alone are short; rationales are cut at the teacher's 128-token budget plus the answer.
ANSWER_TOKENS = 16
RATIONALE_TOKENS = 128 + ANSWER_TOKENS


def degree(method: str) -> int | None:
    """D of a diverse-reasoning method; None for every other method or a D out of range."""
    d = diverse_degree(method)
    return d if d is not None and d <= MAX_DEGREE else None


def multitask_base(method: str) -> str | None:
    """The CoT method a multi-task method trains on (`ft_cot_t70_8aug_mt` -> `ft_cot_t70_8aug`)."""
    base = method[: -len(MULTITASK_SUFFIX)] if method.endswith(MULTITASK_SUFFIX) else None
    return base if base == "ft_cot" or (base and degree(base) is not None) else None


def is_known(method: str) -> bool:
    return method in PROMPTING + FINE_TUNING or degree(method) is not None or multitask_base(method) is not None


def overrides(method: str) -> tuple:
    """(dotted config key, value) pairs for `method` (assumed known)."""
    base = multitask_base(method)
    if base is not None:  # the base method's rationales; answers decoded directly, as ft's
        return tuple((k, ANSWER_TOKENS if k == "eval.max_new_tokens" else v) for k, v in overrides(base))
    d = degree(method)
    if method in PROMPTING:
        # No training; zero-shot answers are short, CoT answers need the rationale budget.
        return (("train.num_epochs", 0), ("eval.max_new_tokens", ANSWER_TOKENS if method == "zs" else RATIONALE_TOKENS))
    if method == "ft":
        return (("eval.max_new_tokens", ANSWER_TOKENS),)
    if method == "ft_cot":
        return (("num_rationales", 1), ("eval.max_new_tokens", RATIONALE_TOKENS))
    return (("num_rationales", d), ("eval.max_new_tokens", RATIONALE_TOKENS))
