"""Training pairs from the real MultiArith data and Kojima et al.'s teacher log."""

import re

import pytest

from rt_jax.data.pairs import build_training_pairs, split_validation
from rt_jax.errors import UserError
from rt_jax.tasks import load_split
from rt_jax.teacher.import_kojima import import_log
from rt_jax.teacher.record import Record
from rt_jax.teacher.store import RationaleStore

LOG = "raw/kojima_zero_shot_cot/log/multiarith_zero_shot_cot.log"


@pytest.fixture(scope="module")
def kojima_cache(data_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("cache")
    problems = []
    import_log(RationaleStore(root), data_dir / LOG, data_dir, problems)
    assert not problems
    return root


def _train_questions_kojima_got_right(data_dir, multiarith_raw):
    """Straight from the log text: train questions with a block whose pred_mode equals GT."""
    train = set(load_split("multiarith", data_dir).train)
    by_question = {}
    for i, row in enumerate(multiarith_raw):
        by_question.setdefault(row["sQuestion"].strip(), []).append(i)
    right = set()
    for block in (data_dir / LOG).read_text().split("*" * 25 + "\n"):
        q = re.search(r"^Q: (.*?)\nA: ", block, re.S | re.M)
        if q and re.search(r"^pred_mode : (.*)$", block, re.M)[1] == re.search(r"^GT : (.*)$", block, re.M)[1]:
            right.update(i for i in by_question[q[1].strip()] if i in train)
    return right


def test_vanilla_pairs_are_the_gold_answers(data_dir, multiarith_raw):
    train = load_split("multiarith", data_dir).train
    for enc_dec, (p_fmt, t_fmt) in ((False, ("{} ###", " {}")), (True, ("{}", "{}"))):
        pairs = build_training_pairs("multiarith", "ft", data_dir=data_dir, is_encoder_decoder=enc_dec)
        assert [p.sample_index for p in pairs] == train
        for p in pairs:
            row = multiarith_raw[p.sample_index]
            assert p.prompt == p_fmt.format(row["sQuestion"].strip())
            assert p.target == t_fmt.format(int(row["lSolutions"][0]))


def _train_questions_in_the_log(data_dir, multiarith_raw):
    train = set(load_split("multiarith", data_dir).train)
    asked = {q.strip() for q in re.findall(r"^Q: (.*?)\nA: ", (data_dir / LOG).read_text(), re.S | re.M)}
    return {i for i, row in enumerate(multiarith_raw) if i in train and row["sQuestion"].strip() in asked}


def test_ft_cot_pairs_are_the_correct_teacher_rationales(data_dir, multiarith_raw, kojima_cache):
    counts = {}
    pairs = build_training_pairs(
        "multiarith",
        "ft_cot",
        data_dir=data_dir,
        is_encoder_decoder=False,
        teacher_cache_dir=kojima_cache,
        rationale_counts=counts,
    )
    right = _train_questions_kojima_got_right(data_dir, multiarith_raw)
    assert {p.sample_index for p in pairs} == right
    # D = 1: one rationale per training question the log answers; the wrong ones left out
    asked = _train_questions_in_the_log(data_dir, multiarith_raw)
    assert counts == {"used": len(right), "filtered_out": len(asked) - len(right)} and counts["filtered_out"] > 0
    assert len(pairs) == len({p.sample_index for p in pairs})  # D = 1
    log_text = (data_dir / LOG).read_text()
    for p in pairs:
        row = multiarith_raw[p.sample_index]
        assert p.prompt == row["sQuestion"].strip() + " ###"
        rationale, answer = re.fullmatch(r" (.*) --> (\S+)", p.target, re.S).groups()
        assert answer == str(int(row["lSolutions"][0]))
        assert rationale == rationale.strip() and rationale in log_text


def _record(sample_index, completion_index, correct, method="zs_cot_t70"):
    return Record(
        teacher="t",
        method=method,
        task="multiarith",
        sample_index=sample_index,
        completion_index=completion_index,
        reasoning_prompt="",
        reasoning_completion=f" r{completion_index}.",
        answer_prompt="",
        answer_completion="",
        reasoning_finish_reason=None,
        answer_finish_reason=None,
        prediction=None,
        correct=correct,
    )


def test_diverse_reasoning_takes_the_first_d_then_the_correct(data_dir, tmp_path):
    train = load_split("multiarith", data_dir).train
    a, b = train[0], train[1]
    with RationaleStore(tmp_path).writer("t", "zs_cot_t70", "multiarith") as w:
        for c, ok in enumerate([False, True, True, False, True]):
            w.append(_record(a, c, ok))
        for c, ok in enumerate([False, False, False, False, True]):
            w.append(_record(b, c, ok))
    pairs = build_training_pairs(
        "multiarith",
        "ft_cot_t70_4aug",
        data_dir=data_dir,
        is_encoder_decoder=True,
        teacher_cache_dir=tmp_path,
        teacher="t",
    )
    assert [(p.sample_index, p.target.split(" -->")[0]) for p in pairs] == [(a, "r1."), (a, "r2.")]
    eight = build_training_pairs(
        "multiarith",
        "ft_cot_t70_8aug",
        data_dir=data_dir,
        is_encoder_decoder=True,
        teacher_cache_dir=tmp_path,
        teacher="t",
    )
    assert [p.sample_index for p in eight] == [a, a, a, b]


def test_teacher_method_selects_the_cache_method_read(data_dir, tmp_path):
    """config.teacher_method (e.g. another temperature) replaces the method's cache method; D is
    still the method's; a bad name is refused before any shard is read."""
    train = load_split("multiarith", data_dir).train
    store = RationaleStore(tmp_path)
    for method, correct in (("zs_cot_t70", (True, True, True)), ("zs_cot_t100", (False, True, True))):
        with store.writer("t", method, "multiarith") as w:
            for c, ok in enumerate(correct):
                w.append(_record(train[0], c, ok, method=method))

    def rationales(method, teacher_method=""):
        pairs = build_training_pairs(
            "multiarith",
            method,
            data_dir=data_dir,
            is_encoder_decoder=True,
            teacher_cache_dir=tmp_path,
            teacher="t",
            teacher_method=teacher_method,
        )
        return [p.target.split(" -->")[0] for p in pairs]

    assert rationales("ft_cot_t70_2aug") == ["r0.", "r1."]
    assert rationales("ft_cot_t70_2aug", "zs_cot_t100") == ["r1."]  # its first 2, the correct ones
    assert rationales("ft_cot_t70_3aug", "zs_cot_t100") == ["r1.", "r2."]
    with pytest.raises(UserError, match=r"0 of 420 training questions .* t/zs_cot_t50"):
        rationales("ft_cot", "zs_cot_t50")  # an empty shard: the error names what was read
    with pytest.raises(UserError, match=r"--config.teacher_method='zs cot': "):
        rationales("ft_cot", "zs cot")


def test_empty_training_set_names_task_method_and_filter(data_dir, tmp_path):
    train = load_split("multiarith", data_dir).train
    with RationaleStore(tmp_path).writer("t", "zs_cot", "multiarith") as w:
        w.append(_record(train[0], 0, False, method="zs_cot"))
    with pytest.raises(UserError, match=r"task multiarith, method ft_cot: 0 of 420 .*correct rationales.*t/zs_cot"):
        build_training_pairs(
            "multiarith", "ft_cot", data_dir=data_dir, is_encoder_decoder=False, teacher_cache_dir=tmp_path, teacher="t"
        )
    with pytest.raises(UserError, match="teacher_cache_dir"):
        build_training_pairs("multiarith", "ft_cot", data_dir=data_dir, is_encoder_decoder=False)
    with pytest.raises(UserError, match="method='zs'"):
        build_training_pairs("multiarith", "zs", data_dir=data_dir, is_encoder_decoder=False)


def test_validation_split_is_seeded_and_disjoint():
    indices = list(range(100, 520))
    train, val = split_validation(indices, 0.1, seed=3)
    assert len(val) == 42 and sorted(train + val) == indices and not set(train) & set(val)
    assert split_validation(indices, 0.1, seed=3) == (train, val)
    assert split_validation(indices, 0.1, seed=4)[1] != val
    assert split_validation(indices, 0.0, seed=3) == (indices, [])
    with pytest.raises(UserError, match="validation_fraction"):
        split_validation(indices, 1.0, seed=0)


# ---- multi-task training (Distilling Step-by-Step): ft_cot's rationales as two tasks ----------


@pytest.mark.parametrize("enc_dec,sep,space", [(False, " ###", " "), (True, "", "")])
def test_multitask_pairs_are_label_and_rationale_tasks(enc_dec, sep, space, data_dir, multiarith_raw, kojima_cache):
    pairs = build_training_pairs(
        "multiarith", "ft_cot_mt", data_dir=data_dir, is_encoder_decoder=enc_dec, teacher_cache_dir=kojima_cache
    )
    right = _train_questions_kojima_got_right(data_dir, multiarith_raw)  # first D=1, correct only, as ft_cot
    assert [p.sample_index for p in pairs] == [i for i in sorted(right) for _ in range(2)]
    log_text = (data_dir / LOG).read_text()
    for label, reason in zip(pairs[::2], pairs[1::2]):
        question = multiarith_raw[label.sample_index]["sQuestion"].strip()
        assert label.prompt == f"[label] {question}{sep}"
        assert label.target == f"{space}{int(multiarith_raw[label.sample_index]['lSolutions'][0])}"
        assert reason.prompt == f"[rationale] {question}{sep}"
        rationale = reason.target[len(space) :]
        assert reason.target.startswith(space) and rationale == rationale.strip() and rationale in log_text
        assert "-->" not in reason.target  # the rationale alone, no answer appended


def test_multitask_rationale_weight_repeats_examples(data_dir, multiarith_raw, kojima_cache):
    def counts(weight):
        pairs = build_training_pairs(
            "multiarith",
            "ft_cot_mt",
            data_dir=data_dir,
            is_encoder_decoder=True,
            teacher_cache_dir=kojima_cache,
            rationale_weight=weight,
        )
        first = [p.prompt.split(" ")[0] for p in pairs if p.sample_index == pairs[0].sample_index]
        return first.count("[label]"), first.count("[rationale]"), len(pairs)

    n = len(_train_questions_kojima_got_right(data_dir, multiarith_raw))
    assert counts(1.0) == (1, 1, 2 * n)
    assert counts(2) == (1, 2, 3 * n)
    assert counts(0.5) == (2, 1, 3 * n)
    for bad in (0.0, -1.0, 0.3, 9.0):
        with pytest.raises(UserError, match="rationale_weight"):
            counts(bad)
    with pytest.raises(UserError, match="template"):
        build_training_pairs(
            "multiarith",
            "ft_cot_mt",
            data_dir=data_dir,
            is_encoder_decoder=True,
            teacher_cache_dir=kojima_cache,
            template="ft_cot_token",
        )
