"""The 12 unified datasets rebuilt from the real raw files, checked against the split files,
the few-shot prompt files (which quote dataset questions verbatim) and the data README."""

import json

import numpy as np
import pytest

from rt_jax.errors import UserError
from rt_jax.tasks import TASKS, load_dataset, load_split

# Sizes stated in ../shared/data/README.md and reasoning-teacher's DATASET_SIZES.
PAPER_SIZES = {
    "single_eq": 508,
    "addsub": 395,
    "multiarith": 600,
    "gsm8k": 8792,
    "aqua": 97721,
    "svamp": 1000,
    "date_understanding": 369,
    "tracking_shuffled_objects": 750,
    "last_letter_concatenation": 500,
    "coin_flip": 500,
    "commonsense_qa": 10962,
    "strategy_qa": 2290,
}


def test_task_keys_in_paper_order():
    assert list(TASKS) == list(PAPER_SIZES)


@pytest.mark.parametrize("task", TASKS)
def test_every_split_index_resolves(task, data_dir):
    ds = load_dataset(task, data_dir)
    split = load_split(task, data_dir)
    assert ds.size == PAPER_SIZES[task]
    assert [ex.sample_index for ex in ds.examples] == sorted(ex.sample_index for ex in ds.examples)
    assert all(ex.question and ex.answer for ex in ds.examples)
    assert all(i in ds for i in split.test)
    if task == "aqua":  # train.json is not in ../shared/data: test part only, indices kept
        assert len(ds) == 254 and not ds.complete
        assert [ex.sample_index for ex in ds.examples] == list(range(97467, 97721))
        assert not any(i in ds for i in split.train)
        (message,) = ds.missing
        assert "raw/deepmind_aqua/train.json" in message and "https://" in message and str(data_dir) in message
    else:
        assert len(ds) == PAPER_SIZES[task] and ds.complete
        assert all(i in ds for i in split.train)
        assert ds.select(split.test[:3]) == [ds[i] for i in split.test[:3]]
        assert ds[np.int64(split.test[0])] == ds[split.test[0]]  # numpy indices work too


def _raw(data_dir, rel):
    return data_dir / "raw/kojima_zero_shot_cot/dataset" / rel


def test_rows_follow_the_notebook_rules(data_dir):
    singleeq = json.loads(_raw(data_dir, "SingleEq/questions.json").read_text())
    ds = load_dataset("single_eq", data_dir)
    assert ds[0].answer == "43.0" and ds[507].question == singleeq[507]["sQuestion"]
    addsub = load_dataset("addsub", data_dir)
    assert addsub[0].answer == "43" and not addsub[0].question.endswith(" ")
    multiarith = json.loads(_raw(data_dir, "MultiArith/MultiArith.json").read_text())
    ma = load_dataset("multiarith", data_dir)
    assert ma[599].question == multiarith[599]["sQuestion"].strip()
    assert ma[599].answer == str(int(multiarith[599]["lSolutions"][0]))
    svamp = load_dataset("svamp", data_dir)
    assert svamp[0].question == (
        "Each pack of dvds costs 76 dollars. If there is a discount of 25 dollars on "
        "each pack How much do you have to pay to buy each pack?"
    )
    assert svamp[0].answer == "51.0"
    gsm = load_dataset("gsm8k", data_dir)
    test_rows = _raw(data_dir, "grade-school-math/test.jsonl").read_text().splitlines()
    first_test = json.loads(test_rows[0])
    assert gsm[7473].question == first_test["question"]
    assert gsm[7473].answer == first_test["answer"].split("#### ")[1]
    assert any("," in ex.answer for ex in gsm.examples)  # GSM8K answers keep commas, e.g. "1,000"
    strategy = load_dataset("strategy_qa", data_dir)
    assert {ex.answer for ex in strategy.examples} == {"Yes", "No"}


def test_aqua_test_part_verbalises_options(data_dir):
    ds = load_dataset("aqua", data_dir)
    row = json.loads(_raw(data_dir, "AQuA/test.json").read_text().splitlines()[0])
    options = ", ".join(f"({o[0]}) {o[2:].strip()}" for o in row["options"])
    assert ds[97467].question == row["question"].strip() + " Answer choices: " + options + "."
    assert ds[97467].answer == row["correct"]
    with pytest.raises(UserError, match=r"sample_index 5 is not available.*train\.json"):
        ds[5]
    with pytest.raises(UserError, match=r"out of range; expected an integer in \[0, 97721\)"):
        ds[97721]


def test_commonsense_qa_is_train_then_dev(data_dir):
    ds = load_dataset("commonsense_qa", data_dir)
    dev = json.loads(_raw(data_dir, "CommonsenseQA/dev_rand_split.jsonl").read_text().splitlines()[0])
    assert ds[9741].question.startswith(dev["question"]["stem"].strip() + " Answer choices: (A) ")
    assert ds[9741].answer == dev["answerKey"]


def test_few_shot_exemplars_quote_the_dataset(data_dir):
    """reasoning-teacher's few-shot prompts name the sample indices they were drawn from:
    the date exemplars carry the seeded option shuffle, so they check it letter by letter."""
    prompts = json.loads((data_dir / "splits/few_shot_cot_prompts.json").read_text())
    date = load_dataset("date_understanding", data_dir)
    for i in prompts["date_understanding"]["sample_indices"]:
        question = date[i].question.replace("\n", " ")
        block = prompts["date_understanding"]["prompt"].split("Q: " + question + "\nA: ")[1].split("\nQ:")[0]
        assert block.endswith(f"The answer is {date[i].answer}.")
    for task in ("coin_flip", "last_letter_concatenation"):
        ds = load_dataset(task, data_dir)
        for i in prompts[task]["sample_indices"]:
            assert f"Q: {ds[i].question}\nA: " in prompts[task]["prompt"]
            assert (
                prompts[task]["prompt"]
                .split(ds[i].question)[1]
                .split("\nQ:")[0]
                .endswith(f"The answer is {ds[i].answer}.")
            )


def test_tracking_keeps_the_input_whitespace(data_dir):
    ds = load_dataset("tracking_shuffled_objects", data_dir)
    raw = json.loads(_raw(data_dir, "Bigbench_object_tracking/task.json").read_text())["examples"][0]
    assert ds[0].question.startswith(raw["input"] + "\nWhich choice is true? Answer choices: (A) ")
    options = [o[:-1] for o in raw["target_scores"]]  # trailing "." dropped, file order kept
    assert ds[0].question.endswith(", ".join(f"({'ABC'[j]}) {o}" for j, o in enumerate(options)) + ".")
    assert ds[0].answer == "ABC"[list(raw["target_scores"].values()).index(1)]


def test_date_shuffle_keeps_the_right_option(data_dir):
    ds = load_dataset("date_understanding", data_dir)
    raw = json.loads(_raw(data_dir, "Bigbench_Date/task.json").read_text())["examples"]
    letters_used = set()
    for ex, row in zip(ds.examples, raw):
        correct = next(o for o, s in row["target_scores"].items() if s).rstrip(".")
        assert f"({ex.answer}) {correct}," in ex.question or f"({ex.answer}) {correct}." in ex.question
        letters_used.add(ex.answer)
    assert len(letters_used) == 6  # shuffled: the first-listed right option moves around
