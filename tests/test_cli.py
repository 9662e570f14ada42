"""Command-line user errors: one `error:` line, exit 2, no traceback, from any working directory."""

import importlib
import pathlib
import re
import subprocess
import sys


def run_in(cwd, *args):
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_missing_config_file_is_one_line(tmp_path):
    out = run_in(tmp_path, "rt_jax.train", f"--config={tmp_path / 'nope.py'}", f"--workdir={tmp_path / 'w'}")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().splitlines() == [
        f"error: --config: [Errno 2] No such file or directory: '{tmp_path / 'nope.py'}'"
    ]


def test_train_default_config_is_found_outside_the_repository(tmp_path):
    # The default is the packaged base config: its override is type-checked, so it loaded.
    out = run_in(tmp_path, "rt_jax.train", f"--workdir={tmp_path / 'w'}", "--config.train.num_epochs=abc")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "--config.train.num_epochs=abc" in out.stderr and "No such file" not in out.stderr


# Every command-line entry point, by module (rt_jax/cli.py documents the one style they share).
ENTRY_POINTS = (
    "rt_jax.data.__main__",
    "rt_jax.teacher.__main__",
    "rt_jax.train.__main__",
    "rt_jax.train.export",
    "rt_jax.evaluate",
    "rt_jax.report",
    "rt_jax.demo",
    "launch.sweep",
    "launch.vm",
)

_DEFINE_EACH = """
import importlib, json
from absl import flags
modules = [importlib.import_module(name) for name in {names!r}]
before = set(flags.FLAGS)  # the libraries' flags (absl, orbax)
defined = {{}}
for name, module in zip({names!r}, modules):
    module.define_flags()  # after every other command's module is imported: no clash
    defined[name] = sorted(set(flags.FLAGS) - before)
    for flag in defined[name]:
        delattr(flags.FLAGS, flag)
print(json.dumps(defined))
"""


def test_every_command_defines_its_flags_on_start_only(tmp_path):
    """All entry-point modules imported into one process, each command's define_flags() defines
    its own flags without a clash (a flag defined at import would be defined twice); no module
    defines flags at its top level; the command runs through run_main(main, define_flags)."""
    import inspect
    import json

    out = subprocess.run(
        [sys.executable, "-c", _DEFINE_EACH.format(names=ENTRY_POINTS)],
        cwd=pathlib.Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    defined = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(defined) == set(ENTRY_POINTS) and all(defined.values())
    assert "workdir" in defined["rt_jax.train.__main__"] and "sweep" in defined["launch.sweep"]
    for name in ENTRY_POINTS:
        source = inspect.getsource(importlib.import_module(name))
        assert "run_main(main, define_flags)" in source, name
        assert not re.search(r"^(\S.*)?flags\.DEFINE_", source, re.M), name  # at a module's top level
