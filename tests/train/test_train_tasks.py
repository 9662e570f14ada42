"""The train command accepts every task its configs accept: the paper's 12 (paper config) and
the demo's synthetic `arith_small` (demo config), known in a fresh process from the files the
demo writes into its data_dir; unknown or missing tasks are one-line user errors."""

import subprocess
import sys

import pytest

from rt_jax.configs import demo as demo_config
from rt_jax.configs import paper
from rt_jax.errors import UserError
from rt_jax.tasks import TASKS, load_dataset, load_split, registry, synthetic
from rt_jax.train import loop


def test_every_paper_task_is_accepted(data_dir):
    for task in TASKS:
        paper.validate(task, "ft_cot", "gpt2")
        config = paper.get_config(f"{task},ft_cot,gpt2")
        config.data_dir = str(data_dir)
        loop.ensure_task(config)
    with pytest.raises(UserError, match="unknown task 'arith_small'"):
        paper.validate("arith_small", "ft_cot", "gpt2")  # the demo's task has its own config


def test_demo_task_is_known_from_its_data_dir(tmp_path, monkeypatch):
    problems, train, test = synthetic.make_split(6, 4, seed=3)
    synthetic.write_task_files(tmp_path / "data", problems, train, test)
    monkeypatch.delitem(registry.TASK_INFO, synthetic.TASK_NAME, raising=False)  # as in a fresh process
    config = demo_config.get_config("ft_cot")
    config.data_dir = str(tmp_path / "data")
    with pytest.raises(UserError, match="unknown task 'arith_small'"):
        registry.task_info(config.task)  # without its data_dir
    loop.ensure_task(config)
    dataset = load_dataset(config.task, config.data_dir)
    assert [ex.question for ex in dataset.select(list(range(10)))] == [p.question for p in problems]
    assert list(load_split(config.task, config.data_dir).train) == list(train)


def test_missing_demo_data_and_unknown_task_are_user_errors(tmp_path, monkeypatch):
    monkeypatch.delitem(registry.TASK_INFO, synthetic.TASK_NAME, raising=False)
    config = demo_config.get_config("ft")
    config.data_dir = str(tmp_path / "nothing")
    with pytest.raises(UserError, match=r"nothing/tasks/arith_small.json not found; `python -m rt_jax.demo"):
        loop.ensure_task(config)
    config.task = "multiarith2"
    with pytest.raises(UserError, match="unknown task 'multiarith2'; expected one of: .*multiarith"):
        loop.ensure_task(config)


def test_train_command_says_where_the_demo_data_is_missing(tmp_path):
    """The real command line: exit 2, one line, no traceback, before any model is loaded."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "rt_jax.train",
            "--config=demo:ft",
            f"--config.data_dir={tmp_path / 'none'}",
            f"--workdir={tmp_path / 'run'}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert "arith_small.json not found" in done.stderr and "Traceback" not in done.stderr
