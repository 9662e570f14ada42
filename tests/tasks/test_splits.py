"""The split rules regenerate the paper's split files."""

import pytest

from rt_jax.tasks import load_split, random_split, subsample, task_info

RANDOM_70_30 = [
    "single_eq",
    "addsub",
    "multiarith",
    "svamp",
    "date_understanding",
    "tracking_shuffled_objects",
    "last_letter_concatenation",
    "coin_flip",
    "strategy_qa",
]


@pytest.mark.parametrize("task", RANDOM_70_30)
def test_random_split_rule_regenerates_the_split_file(task, data_dir):
    assert random_split(task_info(task).size) == load_split(task, data_dir)


def test_predefined_splits(data_dir):
    aqua = load_split("aqua", data_dir)
    assert aqua.train == subsample(range(97467), 10000) and aqua.test == list(range(97467, 97721))
    gsm = load_split("gsm8k", data_dir)
    assert (gsm.train, gsm.test) == (list(range(7473)), list(range(7473, 8792)))
    csqa = load_split("commonsense_qa", data_dir)
    assert (csqa.train, csqa.test) == (list(range(9741)), list(range(9741, 10962)))


def test_random_split_for_a_new_task():
    split = random_split(11, train_fraction=0.5, seed=3)
    assert len(split.train) == 6 and sorted(split.train + split.test) == list(range(11))  # round(5.5) = 6
    assert split != random_split(11, train_fraction=0.5, seed=4)
