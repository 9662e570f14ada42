"""Command-line user errors: one `error:` line, exit 2, no traceback, from any working directory."""

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
