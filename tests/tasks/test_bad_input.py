"""Bad input: one-line UserErrors naming the file, line or index and what was expected."""

import json
import shutil

import pytest

from rt_jax.errors import UserError
from rt_jax.tasks import load_dataset, load_split, task_info

K = "raw/kojima_zero_shot_cot/dataset/"


@pytest.fixture
def copy_of(data_dir, tmp_path):
    """A data dir holding a copy of one raw file (and the split files), to break."""

    def make(rel):
        target = tmp_path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(data_dir / rel, target)
        shutil.copytree(data_dir / "splits", tmp_path / "splits", dirs_exist_ok=True)
        return target

    return make


def _one_line_error(match, fn, *args, **kwargs):
    with pytest.raises(UserError, match=match) as info:
        fn(*args, **kwargs)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_unknown_task_key(data_dir):
    _one_line_error(
        r"unknown task 'multi_arith'; expected one of: single_eq, .*strategy_qa", load_dataset, "multi_arith", data_dir
    )
    _one_line_error("unknown task", load_split, "gsm8", data_dir)


def test_truncated_json_names_file_and_line(copy_of, tmp_path):
    path = copy_of(K + "SingleEq/questions.json")
    path.write_text(path.read_text()[:5000])
    message = _one_line_error("not valid JSON", load_dataset, "single_eq", tmp_path, cache_dir=tmp_path / "c")
    assert message.startswith(f"{path}:") and "untruncated" in message


def test_truncated_jsonl_names_the_line(copy_of, tmp_path):
    path = copy_of(K + "grade-school-math/test.jsonl")
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:100]) + lines[100][:40])
    message = _one_line_error(
        r"test.jsonl:101: not valid JSON", load_dataset, "gsm8k", tmp_path, cache_dir=tmp_path / "c"
    )
    assert "one JSON object per line" in message


def test_empty_part_is_a_row_count_error(copy_of, tmp_path):
    copy_of(K + "grade-school-math/test.jsonl")
    train = tmp_path / "raw/openai_grade_school_math/grade_school_math/data/train.jsonl"
    train.parent.mkdir(parents=True)
    train.write_text("")
    _one_line_error(r"train.jsonl: 0 rows; expected 7473", load_dataset, "gsm8k", tmp_path, cache_dir=tmp_path / "c")


def test_valid_json_with_rows_cut_off(copy_of, tmp_path):
    path = copy_of(K + "coin_flip/coin_flip.json")
    data = json.loads(path.read_text())
    data["examples"] = data["examples"][:499]
    path.write_text(json.dumps(data))
    _one_line_error(
        r"coin_flip.json: 499 rows; expected 500 \(truncated or wrong file\?\)",
        load_dataset,
        "coin_flip",
        tmp_path,
        cache_dir=tmp_path / "c",
    )


def test_malformed_entry_names_the_entry(copy_of, tmp_path):
    path = copy_of(K + "StrategyQA/task.json")
    data = json.loads(path.read_text())
    del data["examples"][17]["target_scores"]
    path.write_text(json.dumps(data))
    message = _one_line_error(
        r"task.json:examples\[17\]: malformed entry \(KeyError: 'target_scores'\); expected",
        load_dataset,
        "strategy_qa",
        tmp_path,
        cache_dir=tmp_path / "c",
    )
    assert "Yes" in message
    path = copy_of(K + "CommonsenseQA/dev_rand_split.jsonl")
    lines = path.read_text().splitlines()
    lines[4] = lines[4].replace('"answerKey": "', '"answerKey": "Z')
    path.write_text("\n".join(lines))
    copy_of(K + "CommonsenseQA/train_rand_split.jsonl")
    _one_line_error(
        r"dev_rand_split.jsonl:5: malformed entry .*expected \{answerKey: A-E",
        load_dataset,
        "commonsense_qa",
        tmp_path,
        cache_dir=tmp_path / "c",
    )


def test_split_index_out_of_range(copy_of, tmp_path, data_dir):
    copy_of(K + "SVAMP/SVAMP.json")
    path = tmp_path / "splits/svamp__default.json"
    split = json.loads(path.read_text())
    split["test"][-1] = 1000
    path.write_text(json.dumps(split))
    _one_line_error(
        r"svamp__default.json: test\[299\] = 1000 out of range; expected an integer sample index in "
        r"\[0, 1000\) for svamp",
        load_split,
        "svamp",
        tmp_path,
    )
    split["test"][-1] = split["train"][0]
    path.write_text(json.dumps({"train": split["train"], "test": sorted(split["test"])}))
    _one_line_error(r"is in both train and test", load_split, "svamp", tmp_path)
    _one_line_error(
        r"svamp__template.json: split file not found",
        load_split,
        "svamp",
        tmp_path,
        "template",
        cache_dir=tmp_path / "c",
    )
    ds = load_dataset("svamp", data_dir)
    _one_line_error(r"svamp: sample_index 1000 out of range; expected an integer in \[0, 1000\)", ds.select, [3, 1000])
    assert task_info("svamp").size == 1000


def test_template_splits(data_dir):
    for task, sizes in {"multiarith": (413, 187), "date_understanding": (261, 108)}.items():
        split = load_split(task, data_dir, "template")
        assert (len(split.train), len(split.test)) == sizes
        assert sorted(split.train + split.test) == list(range(task_info(task).size))
