"""Training (prompt, target) text pairs of a task and method, as the paper builds them.

- `ft`: the gold answers of the training questions (vanilla fine-tuning).
- `ft_cot`: the teacher's greedy Zero-shot-CoT rationale (cache method `zs_cot`, completion 0),
  kept only where the teacher's answer was correct (`rationale_filter`: rt_jax.teacher.select).
- `ft_cot_t70_<D>aug` (diverse reasoning): the first D temperature-0.7 samples (cache method
  `zs_cot_t70`), each correct one a separate pair.
  (Which cache method and D a method reads is rt_jax.methods'; `teacher_method` replaces the
  cache method, so another teacher temperature is a run setting.)
- `<CoT method>_mt` (multi-task, Hsieh et al. 2023, "Distilling Step-by-Step"): the same
  rationales, each giving two pairs, `[label] question` -> answer and `[rationale] question` ->
  rationale; the student is evaluated on the label task alone (direct answers).
The target's answer is the dataset's gold answer (as the reference does; the `all` filter uses
the teacher's own answer instead); the rationale is the teacher's reasoning completion.
Formatting is rt_jax.formats'. `limit_questions` draws the training-set size ablation's subsets.
"""

from __future__ import annotations

import dataclasses
import fractions
import os
from typing import Sequence

import numpy as np

from rt_jax import formats, methods
from rt_jax.errors import UserError
from rt_jax.tasks import load_dataset, load_split
from rt_jax.teacher.select import check_filter, filter_rationales, select_rationales
from rt_jax.teacher.store import RationaleStore


@dataclasses.dataclass(frozen=True)
class TrainingPair:
    sample_index: int
    prompt: str
    target: str


def split_validation(sample_indices: Sequence[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, validation) sample indices: a seeded random `fraction` of the questions (at least
    one when fraction > 0) held out, both sorted. All rationales of a question stay on one side."""
    indices = sorted(int(i) for i in sample_indices)
    if not 0.0 <= fraction < 1.0:
        raise UserError(f"--config.eval.validation_fraction={fraction}: expected a value in [0, 1)")
    if fraction == 0.0 or not indices:
        return indices, []
    count = min(len(indices) - 1, max(1, round(fraction * len(indices))))
    held = set(np.random.default_rng([seed, 0x7A11D]).choice(indices, size=count, replace=False).tolist())
    return [i for i in indices if i not in held], sorted(held)


def limit_questions(sample_indices: Sequence[int], count: int) -> list[int]:
    """The training questions of a run with `max_train_examples` = count (0: all of them): a
    fixed random order of the split's questions (the same for every seed, so seeds vary the
    training only), cut to `count`, sorted. Smaller sets are prefixes of larger ones (8 of 32
    of 128), as nested subsets make the dataset-size curve compare like with like."""
    indices = sorted(int(i) for i in sample_indices)
    if count < 0:
        raise UserError(f"--config.max_train_examples={count}: expected 0 (all) or a number of questions")
    if count == 0 or count >= len(indices):
        return indices
    order = np.random.default_rng(0x5E7).permutation(len(indices))
    return sorted(indices[i] for i in order[:count])


def multitask_repeats(weight: float) -> tuple[int, int]:
    """(label copies, rationale copies) per rationale giving the rationale task `weight` times the
    label task's share of examples: weight = rationale copies / label copies, small integers
    (0.5 -> (2, 1), 2 -> (1, 2)). The batch's loss_mask is int32 (the loss is a mean over target
    tokens), so a weight is realised by repeating examples, not by scaling mask values."""
    frac = fractions.Fraction(weight).limit_denominator(8) if weight > 0 else fractions.Fraction(0)
    if weight <= 0 or abs(float(frac) - weight) > 1e-6 or frac.numerator > 8:
        raise UserError(
            f"--config.rationale_weight={weight}: expected a positive ratio of integers up to 8, "
            "e.g. 0.25, 0.5, 1, 2 (it is realised by repeating examples)"
        )
    return frac.denominator, frac.numerator


def _multitask_pairs(ex, rationale: str, kind: str, weight: float) -> list[TrainingPair]:
    label = formats.format_example(formats.MT_LABEL, kind, ex.question, ex.answer)
    reason = formats.format_example(formats.MT_RATIONALE, kind, ex.question, ex.answer, rationale)
    labels, rationales = multitask_repeats(weight)
    return [TrainingPair(ex.sample_index, label.prompt, label.target)] * labels + [
        TrainingPair(ex.sample_index, reason.prompt, reason.target)
    ] * rationales


def build_training_pairs(
    task: str,
    method: str,
    *,
    data_dir: str | os.PathLike,
    is_encoder_decoder: bool,
    teacher_cache_dir: str | os.PathLike | None = None,
    teacher: str = "text-davinci-002",
    teacher_method: str = "",
    sample_indices: Sequence[int] | None = None,
    split: str = "default",
    template: str | None = None,
    problems: list[str] | None = None,
    rationale_weight: float = 1.0,
    rationale_counts: dict | None = None,
    rationale_filter: str = "correct",
    max_rationale_tokens: int = 0,
) -> list[TrainingPair]:
    """Pairs of the training questions (`sample_indices`, default: the split's train part), in
    (question, completion_index) order. `template` overrides the method's rt_jax.formats template
    (not for multi-task methods, whose two templates are fixed). `teacher_method`: the teacher-cache
    method the rationales are read from (empty: the method's own). `rationale_weight`: multi-task
    methods only, the rationale task's weight (see `multitask_repeats`). `rationale_filter` and
    `max_rationale_tokens`: which of the cache's first-D rationales are trained on
    (rt_jax.teacher.select.filter_rationales). `rationale_counts`, when given, gets {"used",
    "filtered_out"}: of those rationales, the ones trained on and the ones left out.

    Raises UserError when nothing is left to train on, naming the task, method and filter.
    """
    dataset = load_dataset(task, data_dir)
    if sample_indices is None:
        sample_indices = load_split(task, data_dir, split).train
    kind = formats.model_type(is_encoder_decoder)
    parsed = methods.find(method)
    if parsed is None or parsed.is_prompting:
        raise UserError(
            f"--config.method={method!r}: expected ft, ft_cot or ft_cot_t70_<D>aug "
            "(or ft_cot_mt / ft_cot_t70_<D>aug_mt) for training"
        )
    fmt_name = methods.template(template) if template else parsed.template
    source = methods.rationale_source(method, teacher_method)
    multitask = parsed.multitask
    if multitask and template:
        raise UserError(
            f"--config.template={template!r}: multi-task method {method} uses its own "
            f"{formats.MT_LABEL} / {formats.MT_RATIONALE} templates; leave it empty"
        )
    check_filter(rationale_filter)
    pairs = []
    if source is None:
        for ex in dataset.select(sample_indices):
            f = formats.format_example(fmt_name, kind, ex.question, ex.answer)
            pairs.append(TrainingPair(ex.sample_index, f.prompt, f.target))
        filter_text = "questions with a gold answer"
    else:
        if not teacher_cache_dir:
            raise UserError(f"--config.teacher_cache_dir is empty: method {method} needs teacher rationales")
        store = RationaleStore(teacher_cache_dir)
        candidates = select_rationales(
            store,
            task,
            teacher,
            source.teacher_method,
            sample_indices,
            max_per_sample=source.num_rationales,
            correct_only=False,
            problems=problems,
        )
        records = filter_rationales(candidates, rationale_filter, max_rationale_tokens)
        if rationale_counts is not None:
            rationale_counts.update(used=len(records), filtered_out=len(candidates) - len(records))
        for rec in records:
            ex = dataset[rec.sample_index]
            if rationale_filter == "all":  # the teacher's own answer ends its rationale
                ex = dataclasses.replace(ex, answer=rec.prediction)
            if multitask:
                pairs.extend(_multitask_pairs(ex, rec.reasoning_completion, kind, rationale_weight))
                continue
            f = formats.format_example(fmt_name, kind, ex.question, ex.answer, rec.reasoning_completion)
            pairs.append(TrainingPair(ex.sample_index, f.prompt, f.target))
        kept = (
            "correct rationales" if rationale_filter == "correct" else f"rationales kept by filter {rationale_filter}"
        )
        limit = f" of at most {max_rationale_tokens} tokens" if max_rationale_tokens > 0 else ""
        filter_text = (
            f"{kept}{limit} among the first {source.num_rationales} completion(s) of "
            f"{teacher}/{source.teacher_method} in {store.shard_path(teacher, source.teacher_method, task)}"
        )
    if not pairs:
        raise UserError(
            f"no training examples for task {task}, method {method}: 0 of {len(sample_indices)} "
            f"training questions have {filter_text}"
        )
    return pairs
