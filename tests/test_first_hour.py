"""What a new user meets first: the commands' default output folders are ignored by git, and
`teacher import_kojima` says which training data Kojima's logs cannot give and how to get it."""

import io
import json
import pathlib
import re
import subprocess
import sys

from rt_jax.tasks import load_split
from rt_jax.teacher.import_kojima import KOJIMA_METHOD, KOJIMA_TEACHER, ImportReport, what_the_logs_lack
from rt_jax.teacher.store import RationaleStore

ROOT = pathlib.Path(__file__).resolve().parents[1]

# Every command's flags with a relative path default that names a folder it writes (flags
# named *_dir or *_logs; data_dir is an input outside the repository, remote_dir a path on VMs).
_DEFAULTS = """
import importlib, json, pathlib, re, sys
from absl import flags
found = {}
for path in sorted(pathlib.Path("rt_jax").rglob("*.py")) + sorted(pathlib.Path("launch").rglob("*.py")):
    if not re.search(r"^def define_flags", path.read_text(encoding="utf-8"), re.M):
        continue
    name = ".".join(path.with_suffix("").parts)
    before = set(flags.FLAGS)
    importlib.import_module(name).define_flags()
    for flag in set(flags.FLAGS) - before:
        default = flags.FLAGS[flag].default
        if re.search(r"_(dir|logs)$", flag) and flag != "remote_dir" and isinstance(default, str) and default:
            found[f"{name} --{flag}"] = default
        delattr(flags.FLAGS, flag)
from rt_jax.configs.sweeps import diverse_reasoning, paper
found["sweep configs' root"] = paper.get_config().root
found["diverse sweep config's root"] = diverse_reasoning.get_config().root
print(json.dumps(found))
"""


def default_output_folders() -> dict[str, str]:
    out = subprocess.run(
        [sys.executable, "-c", _DEFAULTS], cwd=ROOT, capture_output=True, text=True, timeout=300, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_git_ignores_the_default_output_folders():
    found = default_output_folders()
    defaults = {d for d in found.values() if not d.startswith(("/", ".."))}
    # the ones a user meets first; a flag renamed away from *_dir would drop out of the search
    assert {"demo_out", "teacher_cache", "report", "launch_logs"} <= defaults, found
    # README's `--workdir=runs/<name>` and launch.sweep's log folder for gs:// roots (not flags)
    for folder in sorted(defaults | {"runs", "sweep_logs"}):
        check = subprocess.run(
            ["git", "check-ignore", "--no-index", "-q", f"{folder}/some_file"], cwd=ROOT, capture_output=True
        )
        assert check.returncode == 0, f"{folder}/ is not in .gitignore"
    tracked = subprocess.run(["git", "check-ignore", "--no-index", "-q", "rt_jax/report.py"], cwd=ROOT)
    assert tracked.returncode == 1  # /report/ is the folder at the root only


def test_import_kojima_says_what_the_logs_lack_and_how_to_get_it(tmp_path, data_dir):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "rt_jax.teacher",
            "import_kojima",
            f"--cache_dir={tmp_path}",
            f"--data_dir={data_dir}",
            "--tasks=gsm8k,coin_flip",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    rows = {line.split()[0]: line.split() for line in out.stdout.splitlines()[1:] if not line.startswith("note:")}
    assert rows["gsm8k"][-1] == "0" and int(rows["coin_flip"][-1]) > 0  # training samples with a correct rationale
    # the real files: the gsm8k log covers exactly the test split, none of the training questions
    records = RationaleStore(tmp_path).read(KOJIMA_TEACHER, KOJIMA_METHOD, "gsm8k")
    split = load_split("gsm8k", data_dir)
    assert sorted(r.sample_index for r in records) == split.test
    notes = [line for line in out.stdout.splitlines() if line.startswith("note:")]
    assert len(notes) == 2, out.stdout
    no_train, no_samples = notes
    assert re.match(r"note: 0 training rationales for gsm8k: Kojima's logs cover only their test questions", no_train)
    assert "coin_flip" not in no_train
    assert "import_rt" in no_train and "teacher generate --tasks=gsm8k" in no_train
    assert no_samples.startswith("note: no temperature-0.7 samples (zs_cot_t70) for coin_flip, gsm8k:")
    assert "import_rt" in no_samples and "teacher generate --temperature=0.7" in no_samples


def test_no_note_on_temperature_samples_a_cache_already_has(tmp_path):
    store = RationaleStore(tmp_path)
    shard = store.shard_path("text-davinci-002", "zs_cot_t70", "coin_flip")  # e.g. from import_rt
    shard.parent.mkdir(parents=True)
    shard.write_text("")
    reports = [
        ImportReport(
            "coin_flip", "coin_flip_zero_shot_cot.log", matched=500, train_matched=350, train_with_correct=320
        ),
        ImportReport("aqua", "aqua_zero_shot_cot.log", matched=254),
    ]
    notes = what_the_logs_lack(reports, store)
    assert [n.split(":")[1] for n in notes] == [
        " 0 training rationales for aqua",
        " no temperature-0.7 samples (zs_cot_t70) for aqua",
    ]


def test_a_labelled_run_log_starts_every_console_line_with_its_label():
    from rt_jax.train import metrics

    out = io.StringIO()
    log = metrics.RunLog(None, total_steps=10, enabled=False, stream=out, label="ft_cot")
    log.enabled = True  # console only: no files
    log.progress(2, 0, {"loss": 1.0, "tokens_per_s": 800.0})
    log.epoch_result(0, {"epoch": 0, "accuracy": 12.5, "num_test": 8})
    step, accuracy = out.getvalue().splitlines()
    assert step.startswith("[ft_cot] epoch 0 [######") and "2/10 loss 1.0000" in step
    assert accuracy == "[ft_cot] epoch 0: accuracy 12.50% on 8 test questions"
