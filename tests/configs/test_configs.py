"""rt_jax/configs: every method and student of the paper resolves; config-file flags take a
path, a packaged short name or the old repository path; bad input gives one line."""

import pathlib
import subprocess
import sys

import pytest

from rt_jax import configs, paper_results
from rt_jax.configs import base, paper, students
from rt_jax.configs import demo as demo_config
from rt_jax.errors import UserError
from rt_jax.methods import rationale_source
from rt_jax.models.registry import STUDENTS
from rt_jax.tasks import TASKS

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]


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
    assert (
        set(students.OVERRIDES) == set(paper_results.STUDENT_SIZES) == set(STUDENTS)
    )  # models and report know each one
    for task in TASKS:
        for student in students.OVERRIDES:
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
    out = subprocess.run([sys.executable, str(app), *flags], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected), out.stderr
    ok = subprocess.run(
        [sys.executable, str(app), "--config=configs/paper.py:multiarith", "--config.train.batch_size=16"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0 and ok.stdout.strip() == "batch 16"


def test_config_files_by_path_short_name_or_old_path(tmp_path):
    """Every spelling of a config-file flag reaches the same file: the packaged short name, the
    old repository path (when no such file is relative to the working directory), any path; a
    file relative to the working directory wins over the packaged one."""
    packaged = str(configs.DIR / "paper.py")
    assert configs.resolve("paper:multiarith,ft,gpt2") == f"{packaged}:multiarith,ft,gpt2"
    assert configs.resolve("configs/paper.py:multiarith") == f"{packaged}:multiarith"
    assert configs.resolve("paper.py") == packaged
    assert configs.resolve("sweeps/paper") == str(configs.DIR / "sweeps" / "paper.py")
    assert configs.resolve(f"{packaged}:x") == f"{packaged}:x"
    assert configs.names() == [
        "base",
        "demo",
        "paper",
        "sweeps/ablations",
        "sweeps/dataset_size",
        "sweeps/diverse_reasoning",
        "sweeps/diverse_reasoning_open",
        "sweeps/hyperparameters",
        "sweeps/paper",
        "sweeps/rationale_filter",
        "sweeps/stability",
        "sweeps/teachers",
    ]
    assert configs.load("paper:svamp,ft,gpt2").to_dict() == paper.get_config("svamp,ft,gpt2").to_dict()
    with pytest.raises(UserError) as e:
        configs.resolve("papr:multiarith", "config")
    assert str(e.value) == (
        "--config=papr:multiarith: 'papr' is neither a file nor a packaged config; "
        f"expected a path or one of {', '.join(configs.names())}"
    )
    app = tmp_path / "app.py"
    app.write_text(APP)
    local = tmp_path / "configs" / "paper.py"  # a file of that name relative to the working directory
    local.parent.mkdir()
    local.write_text(
        "from rt_jax.configs import paper\n\ndef get_config(arg):\n"
        "    c = paper.get_config(arg)\n    c.train.batch_size = 3\n    return c\n"
    )

    def batch(*flags):
        out = subprocess.run(
            [sys.executable, str(app), *flags], cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    assert batch("--config=configs/paper.py:multiarith") == "batch 3"
    assert batch("--config=paper:multiarith") == "batch 8"
    assert batch("--config", "paper:multiarith") == "batch 8"
    assert batch(f"--config={local}:multiarith", "--config.train.batch_size=5") == "batch 5"


def test_demo_config():
    demo = demo_config
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
    for bad in ("zs_cot", "ft_cot_mt", "sft"):
        with pytest.raises(UserError) as e:
            demo.get_config(bad)
        assert str(e.value) == (
            f"--config=demo:{bad}: unknown demo method {bad!r}; expected zs, ft, ft_cot or ft_cot_t70_<D>aug"
        )
