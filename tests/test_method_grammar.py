"""rt_jax.methods: the one parser of method names (template, rationale source, D, multi-task,
prompting vs fine-tuning), and its users agreeing with it."""

import pytest

from rt_jax import formats, methods, paper_results
from rt_jax.errors import UserError
from rt_jax.methods import FINE_TUNING, PROMPTING, RationaleSource


@pytest.mark.parametrize(
    "name,kind,template,source,multitask,base,degree",
    [
        ("zs", PROMPTING, "zs", None, False, "zs", None),
        ("zs_cot", PROMPTING, "zs_cot", None, False, "zs_cot", None),
        ("fs_cot", PROMPTING, "fs_cot", None, False, "fs_cot", None),
        ("ft", FINE_TUNING, "ft_token", None, False, "ft", None),
        ("ft_cot", FINE_TUNING, "ft_cot_token", ("zs_cot", 1), False, "ft_cot", None),
        ("ft_cot_t70_1aug", FINE_TUNING, "ft_cot_token", ("zs_cot_t70", 1), False, "ft_cot_t70_1aug", 1),
        ("ft_cot_t70_64aug", FINE_TUNING, "ft_cot_token", ("zs_cot_t70", 64), False, "ft_cot_t70_64aug", 64),
        ("ft_cot_mt", FINE_TUNING, "mt_label", ("zs_cot", 1), True, "ft_cot", None),
        ("ft_cot_t70_8aug_mt", FINE_TUNING, "mt_label", ("zs_cot_t70", 8), True, "ft_cot_t70_8aug", None),
    ],
)
def test_every_method_of_the_grammar(name, kind, template, source, multitask, base, degree):
    m = methods.parse(name)
    assert (m.name, m.kind, m.template, m.multitask, m.base, m.degree) == (
        name,
        kind,
        template,
        multitask,
        base,
        degree,
    )
    assert m.rationale_source == (RationaleSource(*source) if source else None)
    assert m.is_prompting == (kind == PROMPTING)
    assert methods.degree(name) == degree
    # every method's template is one rt_jax.formats knows
    assert template in formats.TEMPLATES or template in formats.PROMPTING_TEMPLATES


@pytest.mark.parametrize(
    "bad",
    ["sft", "ft_mt", "zs_cot_mt", "ft_cot_mt_mt", "ft_cot_t70_0aug", "ft_cot_t70_08aug", "ft_cot_t70_aug_mt",
     "ft_cot_t70_65aug", "ft_cot_t70_128aug", "xft_cot_t70_8aug", "ft_cot_t70_8aug_mtx", "", None],
)  # fmt: skip
def test_names_outside_the_grammar(bad):
    assert methods.find(bad) is None and methods.degree(bad) is None
    with pytest.raises(UserError) as e:
        methods.parse(bad)
    message = str(e.value)
    assert message.startswith(f"unknown method {bad!r}; expected one of: zs, zs_cot, fs_cot, ft, ft_cot, ")
    assert "ft_cot_t70_{D}aug (D=1..64)" in message and "ft_cot_t70_{D}aug_mt" in message and "\n" not in message


def test_template_of_a_method_or_a_template():
    assert methods.template("ft_cot_t70_8aug") == "ft_cot_token" and methods.template("ft") == "ft_token"
    assert methods.template("ft_cot_natural") == "ft_cot_natural"  # config.template names a template
    assert methods.template("fs_cot") == "fs_cot" and methods.template("ft_cot_mt") == formats.MT_LABEL
    with pytest.raises(UserError, match="unknown method or template 'ft_cat'; expected a method"):
        methods.template("ft_cat")


def test_teacher_method_is_a_run_setting():
    """config.teacher_method replaces the cache method a run reads (empty: the method's own);
    D stays the method's."""
    assert methods.rationale_source("ft_cot") == RationaleSource("zs_cot", 1)
    assert methods.rationale_source("ft_cot", "zs_cot_t100") == RationaleSource("zs_cot_t100", 1)
    assert methods.rationale_source("ft_cot_t70_4aug_mt", "zs_cot_t50") == RationaleSource("zs_cot_t50", 4)
    assert methods.rationale_source("ft") is None and methods.rationale_source("ft", "zs_cot_t70") is None
    for bad in ("zs cot", "../zs_cot", "zs/cot", ".hidden"):
        with pytest.raises(UserError) as e:
            methods.rationale_source("ft_cot", bad)
        assert str(e.value).startswith(f"--config.teacher_method={bad!r}: ") and "\n" not in str(e.value)
    with pytest.raises(UserError, match="unknown method 'sft'"):
        methods.rationale_source("sft", "zs_cot")


def test_users_of_the_grammar_agree():
    assert paper_results.paper_method("ft_cot_t70_8aug", "coin_flip") == "ft_cot_diverse"
    assert paper_results.paper_method("ft_cot_t70_64aug", "coin_flip") is None  # the paper ran D=8 there
    assert paper_results.paper_method("ft_cot_t70_8aug_mt", "coin_flip") == "ft_cot_t70_8aug_mt"  # not the paper's
    from rt_jax import report

    assert [m for m in sorted(["ft_cot_t70_8aug", "ft", "ft_cot_t70_2aug", "zs"], key=report.method_rank)] == [
        "zs",
        "ft",
        "ft_cot_t70_2aug",
        "ft_cot_t70_8aug",
    ]
