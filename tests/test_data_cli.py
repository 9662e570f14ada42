"""`python -m rt_jax.data` on the real data, checked against the split files themselves."""

import json
import subprocess
import sys

import pytest

from rt_jax.tasks import TASKS


def _run(*args):
    return subprocess.run([sys.executable, "-m", "rt_jax.data", *args], capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def json_report(data_dir):
    out = _run(f"--data_dir={data_dir}", "--json")
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_json_sizes_match_the_split_files(json_report, data_dir):
    assert list(json_report) == list(TASKS)
    for task, summary in json_report.items():
        split = json.loads((data_dir / "splits" / f"{task}__default.json").read_text())
        if task == "aqua":  # test part only, with the message saying how to get train.json
            assert (summary["size"], summary["train"], summary["test"]) == (254, 0, 254)
            assert summary["paper"] == {"size": 97721, "train": len(split["train"]), "test": len(split["test"])}
            assert "raw/deepmind_aqua/train.json" in summary["missing"][0]
        else:
            assert (summary["train"], summary["test"]) == (len(split["train"]), len(split["test"]))
            assert summary["size"] == len(split["train"]) + len(split["test"])
            assert "missing" not in summary


def test_table_lists_every_task_and_the_missing_file(data_dir):
    out = _run(f"--data_dir={data_dir}", "--tasks=aqua,multiarith")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:4] == ["task", "size", "train", "test"]
    assert lines[1].split()[:8] == ["aqua", "254", "of", "97721", "0", "of", "10000", "254"]
    assert lines[2].split()[:4] == ["multiarith", "600", "420", "180"]
    assert lines[3].startswith("aqua: missing source file raw/deepmind_aqua/train.json: put it at")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--data_dir=DATA", "--tasks=multiarith,gsm9k"], "error: unknown task 'gsm9k'; expected one of: single_eq"),
        ([], "error: --data_dir is required"),
        (["--data_dir=/nonexistent"], "error: --data_dir=/nonexistent: not a folder"),
        (["--data_dir=DATA", "--frobnicate"], "error: Unknown command line flag 'frobnicate'"),
    ],
)
def test_user_errors_are_one_line_exit_2(args, message, data_dir):
    out = _run(*[a.replace("DATA", str(data_dir)) for a in args])
    assert out.returncode == 2
    assert out.stderr.startswith(message) and out.stderr.count("\n") == 1 and "Traceback" not in out.stderr


def test_a_task_without_its_files_is_reported_not_fatal(data_dir, tmp_path):
    (tmp_path / "splits").symlink_to(data_dir / "splits")
    out = _run(f"--data_dir={tmp_path}", "--tasks=coin_flip", "--json", f"--cache_dir={tmp_path / 'cache'}")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)["coin_flip"]
    assert (summary["size"], summary["train"], summary["test"]) == (0, 0, 0)
    assert summary["paper"] == {"size": 500, "train": 350, "test": 150}
    assert "coin_flip/coin_flip.json" in summary["missing"][0]


def test_tfds_dir_builds_array_record(data_dir, tmp_path):
    out = _run(f"--data_dir={data_dir}", "--tasks=last_letter_concatenation", "--json", f"--tfds_dir={tmp_path}")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["last_letter_concatenation"]["test"] == 150
    files = sorted(p.name for p in (tmp_path / "rt_jax_tasks/last_letter_concatenation/1.0.0").iterdir())
    assert "rt_jax_tasks-test.array_record-00000-of-00001" in files and "dataset_info.json" in files
