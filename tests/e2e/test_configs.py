"""configs/: every method and student of the paper resolves; bad input gives one line."""

import importlib.util
import pathlib
import subprocess
import sys

import pytest

from rt_jax import paper_results
from rt_jax.data.pairs import rationale_source
from rt_jax.errors import UserError
from rt_jax.models.registry import STUDENTS
from rt_jax.tasks import TASKS

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


def load_config_file(name):
    spec = importlib.util.spec_from_file_location(f"test_config_{name}", REPO_ROOT / "configs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


paper = load_config_file("paper")
base = load_config_file("base")


@pytest.mark.parametrize(
    "method,epochs,degree",
    [
        ("zs", 0, 1),
        ("zs_cot", 0, 1),
        ("fs_cot", 0, 1),
        ("ft", 20, 1),
        ("ft_cot", 20, 1),
        ("ft_cot_t70_1aug", 20, 1),
        ("ft_cot_t70_64aug", 20, 64),
        ("ft_cot_mt", 20, 1),
        ("ft_cot_t70_8aug_mt", 20, 8),
    ],
)
def test_methods(method, epochs, degree):
    c = paper.get_config(f"svamp,{method},gpt2")
    assert (c.task, c.method, c.student) == ("svamp", method, "gpt2")
    assert c.train.num_epochs == epochs and c.num_rationales == degree
    if degree > 1:  # the data pipeline reads the same D from the method name
        assert rationale_source(method).num_rationales == degree
    # everything not method-specific keeps the paper's defaults from base.py
    b = base.get_config()
    assert (
        (c.train.learning_rate, c.train.batch_size, c.eval.strategy)
        == (3e-4, 8, "greedy")
        == (b.train.learning_rate, b.train.batch_size, b.eval.strategy)
    )


def test_multitask_methods_decode_answers_only():
    """ft_cot_mt trains on ft_cot's rationales but answers directly: ft's decoding budget."""
    mt, cot, ft = (paper.get_config(f"svamp,{m},gpt2") for m in ("ft_cot_mt", "ft_cot", "ft"))
    assert mt.eval.max_new_tokens == ft.eval.max_new_tokens < cot.eval.max_new_tokens
    assert rationale_source("ft_cot_mt") == rationale_source("ft_cot")
    assert mt.rationale_weight == base.get_config().rationale_weight == 1.0


def test_every_student_and_task_resolves():
    students = load_config_file("students").OVERRIDES
    assert set(students) == set(paper_results.STUDENT_SIZES) == set(STUDENTS)  # models and report know each one
    for task in TASKS:
        for student in students:
            c = paper.get_config(f"task={task},method=ft_cot_t70_8aug,student={student},seed=2")
            assert (c.task, c.student, c.seed, c.num_rationales) == (task, student, 2, 8)
    big = paper.get_config("multiarith,ft,flan-t5-xl")
    assert (big.mesh.fsdp, big.mesh.data, big.train.remat, big.train.max_seq_len) == (-1, 1, "layer", 512)


@pytest.mark.parametrize(
    "arg,message",
    [
        ("nosuchtask,ft,gpt2", "unknown task 'nosuchtask'; expected one of: single_eq, addsub,"),
        (
            "multiarith,sft,gpt2",
            "unknown method 'sft'; expected one of: zs, zs_cot, fs_cot, ft, ft_cot, ft_cot_t70_{D}aug",
        ),
        ("multiarith,ft_cot_t70_128aug,gpt2", "unknown method 'ft_cot_t70_128aug'"),
        ("multiarith,ft_mt,gpt2", "unknown method 'ft_mt'"),
        ("multiarith,ft,gpt3", "unknown student 'gpt3'; expected one of: gpt2, gpt2-medium,"),
        ("multiarith,ft,gpt2,x", "seed 'x' is not an integer"),
        ("lr=3", "unknown key 'lr'; expected one of task, method, student, seed"),
    ],
)
def test_bad_config_args(arg, message):
    with pytest.raises(UserError) as e:
        paper.get_config(arg)
    assert message in str(e.value) and "\n" not in str(e.value)


APP = """
from absl import flags
from ml_collections import config_flags
from rt_jax.cli import run_main

config_flags.DEFINE_config_file("config", None, "run config")
def main(argv):
    print("batch", flags.FLAGS.config.train.batch_size)
run_main(main)
"""


@pytest.mark.parametrize(
    "flags,expected",
    [
        (["--config=configs/paper.py:multiarith,ft,gpt9"], "error: unknown student 'gpt9'; expected one of: gpt2,"),
        (
            ["--config=configs/paper.py:multiarith", "--config.train.batch_size=abc"],
            "error: flag --config.train.batch_size=abc: invalid literal for int()",
        ),
        (["--config=configs/paper.py:multiarith", "--config.train.nope=1"], "error: unknown config field 'nope'"),
    ],
)
def test_command_line_config_errors(tmp_path, flags, expected):
    app = tmp_path / "app.py"
    app.write_text(APP)
    out = subprocess.run([sys.executable, str(app), *flags], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected), out.stderr
    ok = subprocess.run(
        [sys.executable, str(app), "--config=configs/paper.py:multiarith", "--config.train.batch_size=16"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0 and ok.stdout.strip() == "batch 16"


def test_demo_config():
    demo = load_config_file("demo")
    c = demo.get_config("ft_cot_t70_4aug")
    assert (c.task, c.method, c.num_rationales, c.train.batch_size, c.train.learning_rate) == (
        "arith_small",
        "ft_cot_t70_4aug",
        4,
        32,
        2e-3,
    )
    assert demo.get_config("ft").eval.max_new_tokens < c.eval.max_new_tokens  # answers only vs rationales
    assert c.demo.position_embedding == "rotary"
    with pytest.raises(UserError, match="configs/demo.py:zs_cot: unknown demo method; expected one of zs, ft, ft_cot"):
        demo.get_config("zs_cot")
