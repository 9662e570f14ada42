"""Templates against the original strings (reasoning-teacher data/format.py, Kojima main.py),
the few-shot prompt file and Kojima's Zero-shot-CoT logs."""

import re

import pytest

from rt_jax import formats
from rt_jax.errors import UserError
from rt_jax.formats import DECODER, ENCODER_DECODER, format_example
from rt_jax.methods import template
from rt_jax.tasks import TASK_INFO, load_dataset, score


def test_fine_tune_cot_token_template_as_the_original():
    dec = format_example(template("ft_cot"), DECODER, " Q? ", answer=" 5 ", rationale=" 2+3=5. ")
    assert (dec.prompt, dec.target) == ("Q? ###", " 2+3=5. --> 5")
    enc = format_example(template("ft_cot_t70_8aug"), ENCODER_DECODER, "Q?", answer="5", rationale="2+3=5.")
    assert (enc.prompt, enc.target) == ("Q?", "2+3=5. --> 5")
    assert format_example(template("ft_cot"), DECODER, "Q?", "5", "r", stop_phrase=True).target == " r --> 5 END"
    assert formats.answer_prefix(template("ft_cot")) == "-->"
    assert formats.answer_prefix(template("ft_cot_t70_64aug")) == "-->"


def test_other_templates_as_the_original():
    assert format_example(template("ft"), DECODER, "Q?", "5") == formats.Formatted("Q? ###", " 5")
    assert format_example(template("ft"), ENCODER_DECODER, "Q?", "5") == formats.Formatted("Q?", "5")
    assert format_example("ft_natural", DECODER, "Q?", "5") == formats.Formatted("Q: Q?\n\nA:", " 5")
    assert format_example("zs", DECODER, "Q?") == formats.Formatted("Q: Q?\n\nA:", None)
    assert format_example("zs", ENCODER_DECODER, "Q?", "5") == formats.Formatted("question: Q?", None)
    natural = format_example("ft_cot_natural", DECODER, "Q?", "5", "r.")
    assert natural == formats.Formatted("Q: Q?\n\nA: Let's think step by step.\n\n", " r.\n\nTherefore the answer is 5")
    assert formats.answer_prefix(template("ft")) is None and formats.answer_prefix(template("zs")) is None
    assert formats.answer_prefix(template("fs_cot")) == "The answer is"


def test_bad_requests_are_user_errors():
    with pytest.raises(UserError, match="unknown method or template 'ft_cat'"):
        template("ft_cat")
    with pytest.raises(UserError, match="unknown template 'ft_cot'; expected one of zs, ft_token"):
        format_example("ft_cot", DECODER, "Q?")  # a method name: its template is rt_jax.methods'
    with pytest.raises(UserError, match="prompted with zs_cot_reasoning_prompt"):
        format_example("zs_cot", DECODER, "Q?")
    with pytest.raises(UserError, match="unknown model type"):
        format_example("ft", "encoder", "Q?")
    with pytest.raises(UserError, match="no encoder_decoder form"):
        format_example("ft_cot_natural", ENCODER_DECODER, "Q?")
    with pytest.raises(UserError, match="needs a rationale"):
        format_example("ft_cot_token", DECODER, "Q?", answer="5")


def test_natural_template_scores_its_own_target():
    target = format_example("ft_cot_natural", DECODER, "Q?", "12", "3 times 4 is 12, plus 1 is 13?").target
    result = score("multiarith", target, "12", answer_prefix=formats.answer_prefix("ft_cot_natural"))
    assert result.correct and result.followed_format


def test_few_shot_cot_prompt_from_the_file(data_dir):
    ds = load_dataset("multiarith", data_dir)
    prompt = formats.fs_cot_prompt("multiarith", ds[0].question, data_dir)
    assert prompt.startswith("Q: There are 15 trees in the grove.")
    assert prompt.endswith("The answer is 8.\nQ: " + ds[0].question + "\nA:")
    with pytest.raises(UserError, match="no Few-shot-CoT prompt for tracking_shuffled_objects"):
        formats.fs_cot_prompt("tracking_shuffled_objects", "Q?", data_dir)


@pytest.mark.parametrize("task", ["addsub", "aqua", "coin_flip", "last_letter_concatenation"])
def test_zero_shot_cot_prompts_rebuild_kojima_logs(task, data_dir):
    """Each logged block prints `answer prompt + answer text`; rebuild it from its pieces."""
    log = data_dir / "raw/kojima_zero_shot_cot/log" / f"{TASK_INFO[task].kojima_log}_zero_shot_cot.log"
    blocks = re.findall(r"1_th_sampling\n(Q: .*?)\npred_before : (.*?)\npred_after", log.read_text(), re.S)
    assert len(blocks) == TASK_INFO[task].parts[-1].rows
    trigger = TASK_INFO[task].trigger
    for printed, answer_text in blocks:
        question = printed[3 : printed.index("\nA: Let's think step by step.")]
        reasoning_prompt = formats.zs_cot_reasoning_prompt(question)
        assert printed.startswith(reasoning_prompt)
        rationale = printed[len(reasoning_prompt) : printed.rindex(" " + trigger)]
        assert formats.zs_cot_answer_prompt(task, reasoning_prompt, rationale) + answer_text == printed


def test_multitask_methods_are_prompted_for_direct_answers(data_dir):
    """Evaluation of ft_cot_mt uses the [label] prompt and reads the answer from the first number,
    with no rationale or "-->" expected (the student answers directly)."""
    from rt_jax import evaluation

    ds = load_dataset("multiarith", data_dir)
    examples = [ds[i] for i in (0, 1, 2)]
    for method in ("ft_cot_mt", "ft_cot_t70_8aug_mt"):
        for enc_dec, sep in ((False, " ###"), (True, "")):
            loaded_like = type("Loaded", (), {"is_encoder_decoder": enc_dec})()
            prompts, prefix = evaluation.prompts_for(method, "multiarith", examples, loaded_like, data_dir)
            assert prompts == [f"[label] {ex.question.strip()}{sep}" for ex in examples]
            assert prefix is None
    gold = examples[0].answer
    assert score("multiarith", f" {gold}", gold, answer_prefix=prefix).correct
    wrong = str(int(gold) + 1)
    assert not score("multiarith", f" {wrong} then {gold}", gold, answer_prefix=prefix).correct
    for bad in ("ft_mt", "zs_cot_mt", "ft_cot_t70_aug_mt"):
        with pytest.raises(UserError, match="unknown method"):
            template(bad)
