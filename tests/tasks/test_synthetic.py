"""arith_small: questions solved independently from their text; its files make it a task of
rt_jax.tasks in any process given the data_dir. (Its teacher: tests/teacher/test_rule_based.py.)"""

import json
import re
import subprocess
import sys

import pytest

from rt_jax.errors import UserError
from rt_jax.tasks import synthetic

_VERB_SIGN = {"finds": 1, "gets": 1, "buys": 1, "loses": -1, "gives away": -1, "eats": -1}


def solve_from_text(question: str) -> int:
    m = re.fullmatch(r"\w+ has (\d+) \w+, (.*)\. How many \w+\?", question)
    assert m, question
    count = int(m.group(1))
    for action in m.group(2).split(", "):
        verb, amount = action.rsplit(" ", 1)
        count += _VERB_SIGN[verb] * int(amount)
        assert count >= 0
    return count


def test_problems_are_distinct_and_answers_follow_from_the_text():
    problems, train, test = synthetic.make_split(300, 200, seed=3)
    assert [p.sample_index for p in problems] == list(range(500))
    assert train == list(range(300)) and test == list(range(300, 500))
    assert len({p.question for p in problems}) == 500
    for p in problems:
        assert str(solve_from_text(p.question)) == p.answer
        assert 2 <= len(p.steps) <= 3 and 1 <= p.start <= 9
    assert synthetic.make_problems(50, seed=3) == problems[:50]  # deterministic in the seed


def test_task_files_make_a_task_of_rt_jax_tasks(tmp_path):
    from rt_jax.tasks import TASKS, load_dataset, load_split, score

    problems, train, test = synthetic.make_split(60, 20, seed=5)
    synthetic.write_task_files(tmp_path, problems, train, test)
    assert "arith_small" not in TASKS  # the paper's 12 stay 12
    ds = load_dataset("arith_small", tmp_path)
    assert [(e.question, e.answer) for e in ds] == [(p.question, p.answer) for p in problems]
    assert load_split("arith_small", tmp_path).test == test
    assert score("arith_small", " 7-3=4. 4+4=8. --> 8", "8", answer_prefix="-->").correct
    with pytest.raises(UserError, match="already holds a different arith_small dataset"):
        synthetic.write_task_files(tmp_path, problems[::-1], train, test)
    # another data_dir with another size, in the same process: each load follows its own files
    small = synthetic.make_split(6, 4, seed=1)
    synthetic.write_task_files(tmp_path / "small", *small)
    assert (
        len(load_dataset("arith_small", tmp_path / "small")) == 10 and len(load_dataset("arith_small", tmp_path)) == 80
    )


FRESH_PROCESS = """
import sys
from rt_jax.tasks import load_dataset, load_split, registry, score
data_dir = sys.argv[1]
info = registry.task_info("arith_small", data_dir)
ds = load_dataset("arith_small", data_dir)
split = load_split("arith_small", data_dir)
ex = ds[split.test[0]]
print(info.size, info.answer_kind, len(split.train), score("arith_small", f" so {ex.answer}.", ex.answer).correct)
print(ex.question)
"""


def test_a_fresh_process_knows_the_task_from_its_data_dir(tmp_path):
    """No registration by hand: task_info / load_dataset / load_split / score of arith_small work
    in a new process that is only given the data_dir."""
    problems, train, test = synthetic.make_split(12, 5, seed=4)
    synthetic.write_task_files(tmp_path / "data", problems, train, test)
    out = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, str(tmp_path / "data")], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["17 integer 12 True", problems[test[0]].question]


def test_bad_task_files_are_one_line_errors(tmp_path):
    from rt_jax.tasks import registry

    problems, train, test = synthetic.make_split(6, 4, seed=3)
    synthetic.write_task_files(tmp_path, problems, train, test)
    task_file = registry.task_file("arith_small", tmp_path)
    good = json.loads(task_file.read_text())
    for change, message in [
        ({"rows": "ten"}, "field 'rows' missing or not a int"),
        ({"answer_kind": "words"}, "answer_kind 'words'; expected one of float, integer"),
        ({"data_file": "synthetic/none.json"}, "synthetic/none.json is missing"),
    ]:
        task_file.write_text(json.dumps({**good, **change}))
        with pytest.raises(UserError) as e:
            registry.task_info("arith_small", tmp_path)
        assert str(e.value).startswith(f"{task_file}: ") and message in str(e.value) and "\n" not in str(e.value)
    task_file.unlink()
    with pytest.raises(
        UserError, match=rf"unknown task 'arith_small'; expected one of: single_eq, .*{task_file} not found"
    ):
        registry.task_info("arith_small", tmp_path)
