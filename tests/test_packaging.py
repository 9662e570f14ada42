"""What `pip install .` (not editable) ships: every module of rt_jax, the config files among them,
and a demo that runs from an empty directory with nothing but the installed package."""

import json
import os
import pathlib
import subprocess
import sys
import zipfile

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> pathlib.Path:
    """A wheel built from a copy of the checkout's files (tracked, or untracked and not ignored),
    so the build writes nothing into the checkout."""
    tmp = tmp_path_factory.mktemp("wheel")
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO_ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, files):
        source = REPO_ROOT / os.fsdecode(name)
        if source.is_file():
            target = tmp / "src" / os.fsdecode(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", ".", "-w", str(tmp / "out")],
        cwd=tmp / "src",
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = (tmp / "out").glob("rt_jax-*.whl")
    return built


def test_wheel_ships_every_module_and_the_configs(wheel):
    shipped = set(zipfile.ZipFile(wheel).namelist())
    sources = {p.relative_to(REPO_ROOT).as_posix() for p in (REPO_ROOT / "rt_jax").rglob("*.py")}
    configs = {name for name in sources if name.startswith("rt_jax/configs/")}
    assert {"rt_jax/configs/paper.py", "rt_jax/configs/demo.py", "rt_jax/configs/sweeps/paper.py"} <= configs
    assert sources - shipped == set()  # every module, the config files included
    assert "rt_jax/resources/paper_results.csv" in shipped


@pytest.mark.slow  # a virtual environment, an install and two short training runs: a few minutes
def test_installed_package_runs_the_demo_from_an_empty_directory(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=300)
    python = str(venv / "bin" / "python")
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # the installed package, not this checkout
    where = subprocess.run(
        [python, "-c", "import rt_jax; print(rt_jax.__file__)"], cwd=empty, env=env, capture_output=True, text=True
    )
    assert where.stdout.strip().startswith(str(venv)), where.stdout + where.stderr
    flags = ["--methods=zs,ft", "--config.demo.steps=20", "--config.demo.num_test=20", "--config.demo.num_train=40"]
    out = subprocess.run(
        [python, "-m", "rt_jax.demo", *flags], cwd=empty, env=env, capture_output=True, text=True, timeout=900
    )
    assert out.returncode == 0, out.stderr[-3000:]
    table = (empty / "demo_out" / "demo_results.md").read_text()
    assert "| Zero-shot | 0 |" in table and "| Vanilla fine-tuning | 40 |" in table
    rows = json.loads((empty / "demo_out" / "demo_results.json").read_text())["rows"]
    assert [(r["method"], r["num_test"]) for r in rows] == [("zs", 20), ("ft", 20)]
