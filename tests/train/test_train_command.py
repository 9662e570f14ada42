"""`python -m rt_jax.train` refuses a workdir it cannot use, and a bad student name, in one line
before any work. Each command points --config.model_path at a folder that does not exist: had
the command gone on to load the student, its error would name that folder instead."""

import os
import shutil
import subprocess
import sys

from rt_jax import run_dir


def train(tmp_path, data_dir, workdir, *flags, unprivileged=False):
    argv = [
        sys.executable,
        "-m",
        "rt_jax.train",
        "--config=paper:multiarith,ft,gpt2",
        f"--config.data_dir={data_dir}",
        f"--config.model_path={tmp_path / 'no_such_student'}",
        f"--workdir={workdir}",
        *flags,
    ]
    if unprivileged and os.geteuid() == 0:  # root writes anywhere: drop the capability that lets it
        setpriv = shutil.which("setpriv")
        assert setpriv, "setpriv (util-linux) is needed to run this test as root"
        argv = [
            setpriv,
            "--bounding-set=-dac_override,-dac_read_search",
            "--inh-caps=-dac_override,-dac_read_search",
            *argv,
        ]
    return subprocess.run(argv, capture_output=True, text=True, timeout=300)


def one_line_error(out) -> str:
    assert out.returncode == 2, out.stderr[-2000:]
    assert "Traceback" not in out.stderr and "no_such_student" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr[-2000:]
    return lines[0]


def test_a_workdir_that_is_a_file(tmp_path, data_dir):
    (tmp_path / "file").write_text("not a folder")
    line = one_line_error(train(tmp_path, data_dir, tmp_path / "file"))
    assert line == f"error: --workdir={tmp_path / 'file'}: is a file; expected a folder (or a path to create one at)"
    assert (tmp_path / "file").read_text() == "not a folder"


def test_a_workdir_that_cannot_be_written(tmp_path, data_dir):
    workdir = tmp_path / "read_only"
    workdir.mkdir()
    workdir.chmod(0o555)
    try:
        line = one_line_error(train(tmp_path, data_dir, workdir, unprivileged=True))
        assert line == f"error: --workdir={workdir}: this user may not write in it; choose another --workdir"
    finally:
        workdir.chmod(0o755)
    assert os.listdir(workdir) == []


def test_a_corrupt_config_snapshot(tmp_path, data_dir):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text('{"task": "multiarith", "method": ')
    line = one_line_error(train(tmp_path, data_dir, tmp_path / "run"))
    assert line.startswith(f"error: {tmp_path / 'run' / 'config.json'}:1: not valid JSON (")
    assert (tmp_path / "run" / "config.json").read_text() == '{"task": "multiarith", "method": '


def test_a_student_name_that_is_a_path(tmp_path, data_dir):
    line = one_line_error(train(tmp_path, data_dir, tmp_path / "run", "--config.student=../../escape"))
    assert line == (
        "error: --config.student='../../escape': expected a name of letters, digits, '.', '_' or '-' "
        "(it names the run's predictions folder)"
    )
    assert not (tmp_path / "run").exists()


def test_a_workdir_another_process_runs_in(tmp_path, data_dir):
    with run_dir.lock(tmp_path / "run"):
        line = one_line_error(train(tmp_path, data_dir, tmp_path / "run"))
    assert line.startswith(f"error: --workdir={tmp_path / 'run'}: a run is already going on in it (pid {os.getpid()} ")
    assert sorted(os.listdir(tmp_path / "run")) == ["run.lock"]  # nothing else written
