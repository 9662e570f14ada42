"""What each method changes in a run's config (what a method name means is rt_jax.methods').

Prompting methods (zs, zs_cot, fs_cot) train for 0 epochs; every method gets the decoding
budget its completions need; CoT methods read D = num_rationales rationales per question.
"""

from rt_jax import methods

# Answers alone are short; rationales are cut at the teacher's 128-token budget plus the answer.
ANSWER_TOKENS = 16
RATIONALE_TOKENS = 128 + ANSWER_TOKENS


def overrides(method: str) -> tuple:
    """(dotted config key, value) pairs for `method` (a UserError for an unknown one)."""
    m = methods.parse(method)
    if m.multitask:  # the base method's rationales; answers decoded directly, as ft's
        return tuple((k, ANSWER_TOKENS if k == "eval.max_new_tokens" else v) for k, v in overrides(m.base))
    if m.is_prompting:
        # No training; zero-shot answers are short, CoT answers need the rationale budget.
        return (("train.num_epochs", 0), ("eval.max_new_tokens", ANSWER_TOKENS if method == "zs" else RATIONALE_TOKENS))
    if m.rationale_source is None:  # ft: gold answers
        return (("eval.max_new_tokens", ANSWER_TOKENS),)
    return (("num_rationales", m.rationale_source.num_rationales), ("eval.max_new_tokens", RATIONALE_TOKENS))
