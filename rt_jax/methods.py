"""What a method name means: the one parser of the paper's method names.

    m = methods.parse("ft_cot_t70_8aug")
    m.kind == "fine-tuning";  m.template == "ft_cot_token";  m.degree == 8
    m.rationale_source == RationaleSource(teacher_method="zs_cot_t70", num_rationales=8)

The grammar:
- zs: zero-shot, the student answers the question directly (prompting: no training).
- zs_cot: Zero-shot-CoT, "Let's think step by step." (prompting).
- fs_cot: Few-shot-CoT with the paper's exemplars (prompting).
- ft: vanilla fine-tuning on `question ###` -> ` answer` (gold answers, no teacher).
- ft_cot: Fine-tune-CoT on the greedy teacher's correct rationales (teacher-cache method zs_cot, D = 1).
- ft_cot_t70_<D>aug, D = 1..64: diverse reasoning, the first D teacher samples at temperature 0.7
  per question (cache method zs_cot_t70).
- <CoT method>_mt (ft_cot_mt, ft_cot_t70_<D>aug_mt; beyond the paper): multi-task training as in
  Hsieh et al. 2023, "Distilling Step-by-Step": the CoT method's rationales trained as
  `[label] question` -> answer and `[rationale] question` -> rationale; evaluated on direct answers.

Templates are rt_jax.formats'; what each method changes in a run's config is
rt_jax.configs.methods'.
"""

from __future__ import annotations

import dataclasses
import re

from rt_jax import formats
from rt_jax.errors import UserError

PROMPTING, FINE_TUNING = "prompting", "fine-tuning"
MAX_DEGREE = 64  # the paper's largest D (the teacher cache holds 64 samples per question)
GREEDY_TEACHER_METHOD = "zs_cot"  # teacher-cache methods (rt_jax.teacher.generate.method_name)
SAMPLED_TEACHER_METHOD = "zs_cot_t70"
MULTITASK_SUFFIX = "_mt"
GRAMMAR = "zs, zs_cot, fs_cot, ft, ft_cot, ft_cot_t70_{D}aug (D=1..64), ft_cot_mt, ft_cot_t70_{D}aug_mt"

_DIVERSE = re.compile(r"ft_cot_t70_([1-9]\d*)aug")


@dataclasses.dataclass(frozen=True)
class RationaleSource:
    """Where a method's rationales come from in the teacher cache."""

    teacher_method: str  # cache method: zs_cot (greedy), zs_cot_t70 (temperature 0.7), ...
    num_rationales: int  # D: completions considered per question (before the correctness filter)


@dataclasses.dataclass(frozen=True)
class Method:
    name: str
    kind: str  # PROMPTING (evaluated without training) or FINE_TUNING
    template: str  # the rt_jax.formats template the student is prompted (evaluated) with
    rationale_source: RationaleSource | None  # the teacher data it trains on; None: none (zs, ft, ...)
    multitask: bool = False  # <CoT method>_mt
    base: str = ""  # the method whose training data it uses: itself, or the CoT method of a _mt one
    degree: int | None = None  # D of diverse reasoning (ft_cot_t70_<D>aug only; its _mt form: see base)

    @property
    def is_prompting(self) -> bool:
        return self.kind == PROMPTING


_FIXED = {
    "zs": Method("zs", PROMPTING, "zs", None, base="zs"),
    "zs_cot": Method("zs_cot", PROMPTING, "zs_cot", None, base="zs_cot"),
    "fs_cot": Method("fs_cot", PROMPTING, "fs_cot", None, base="fs_cot"),
    "ft": Method("ft", FINE_TUNING, "ft_token", None, base="ft"),
    "ft_cot": Method("ft_cot", FINE_TUNING, "ft_cot_token", RationaleSource(GREEDY_TEACHER_METHOD, 1), base="ft_cot"),
}


def find(name: str) -> Method | None:
    """The method `name` names, or None when it is not a method (e.g. a report's `ft_cot-sc8`)."""
    if not isinstance(name, str):
        return None
    if name in _FIXED:
        return _FIXED[name]
    diverse = _DIVERSE.fullmatch(name)
    if diverse:
        d = int(diverse.group(1))
        if d > MAX_DEGREE:
            return None
        source = RationaleSource(SAMPLED_TEACHER_METHOD, d)
        return Method(name, FINE_TUNING, "ft_cot_token", source, base=name, degree=d)
    if name.endswith(MULTITASK_SUFFIX):
        base = find(name[: -len(MULTITASK_SUFFIX)])
        if base is not None and base.rationale_source is not None and not base.multitask:
            return Method(name, FINE_TUNING, formats.MT_LABEL, base.rationale_source, multitask=True, base=base.name)
    return None


def parse(name: str) -> Method:
    """The method `name` names; a UserError listing the grammar otherwise."""
    method = find(name)
    if method is None:
        raise UserError(f"unknown method {name!r}; expected one of: {GRAMMAR}")
    return method


def degree(name: str) -> int | None:
    """D of a diverse-reasoning method `ft_cot_t70_<D>aug`; None for any other name."""
    method = find(name)
    return method.degree if method else None


def template(name: str) -> str:
    """The template a method is prompted with (ft_cot -> ft_cot_token), or `name` itself when it
    is a template (config.template, e.g. ft_cot_natural)."""
    if name in formats.TEMPLATES or name in formats.PROMPTING_TEMPLATES:
        return name
    method = find(name)
    if method is None:
        raise UserError(
            f"unknown method or template {name!r}; expected a method ({GRAMMAR}) "
            f"or a template ({', '.join(formats.TEMPLATES)})"
        )
    return method.template


def rationale_source(method: str, teacher_method: str = "") -> RationaleSource | None:
    """The teacher data a run of `method` reads: the method's own source, with the cache method
    replaced by `teacher_method` (config.teacher_method) when that is set; None for methods
    that train on no rationales."""
    source = parse(method).rationale_source
    if not teacher_method:
        return source
    from rt_jax.teacher.record import InvalidRecord, check_name  # shard names: one rule

    try:
        check_name("teacher-cache method", teacher_method)
    except InvalidRecord as e:
        raise UserError(
            f"--config.teacher_method={teacher_method!r}: {e}, e.g. {GREEDY_TEACHER_METHOD} or "
            f"{SAMPLED_TEACHER_METHOD} (empty: the method's own)"
        ) from None
    return None if source is None else dataclasses.replace(source, teacher_method=teacher_method)
