"""A trained student leaves its workdir: the restored checkpoint params are the ones the run
saved, the exported Hugging Face checkpoint loads back equal, and bad input is one line."""

import subprocess
import sys

import jax
import numpy as np
import pytest
from train_helpers import final_params, run_config, small_data, tiny_student

from rt_jax import models
from rt_jax.errors import UserError
from rt_jax.train import export, loop

# Runs of one module compile the same train step: the persistent cache compiles it once.
pytestmark = pytest.mark.usefixtures("compilation_cache")


def accuracy_by_epoch(config, loaded, params, workdir, epoch, mesh):
    """Epoch 0 scores best, so `best` and `latest` are different checkpoints."""
    return {"accuracy": 90.0 - epoch, "num_test": 1}


@pytest.fixture(scope="module")
def trained(tmp_path_factory, examples):
    root = tmp_path_factory.mktemp("export")
    student = tiny_student()
    models.save_pretrained(student, root / "init")
    config = run_config(root, keep_checkpoints=1)
    config.model_path = str(root / "init")
    loop.train(config, root / "run", loaded=student, data=small_data(config, examples), evaluate_fn=accuracy_by_epoch)
    return root


def test_restored_params_are_the_saved_ones(trained):
    step, _, saved_params = final_params(trained / "run")
    loaded, restored_step = export.restore_student(trained / "run", "latest")
    assert restored_step == step == 12
    jax.tree.map(np.testing.assert_array_equal, saved_params, jax.device_get(loaded.params))
    best, best_step = export.restore_student(trained / "run", "best")
    assert best_step == 6  # the end of epoch 0, kept as the best although older than the last one
    diff = jax.tree.map(lambda a, b: float(np.abs(np.asarray(a) - np.asarray(b)).max()), best.params, loaded.params)
    assert max(jax.tree.leaves(diff)) > 0


def test_export_command_writes_a_loadable_checkpoint(trained):
    out = trained / "exported"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "rt_jax.train.export",
            f"--workdir={trained / 'run'}",
            f"--out_dir={out}",
            "--step=latest",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    _, _, saved_params = final_params(trained / "run")
    back = models.from_pretrained(str(out))
    jax.tree.map(np.testing.assert_array_equal, saved_params, back.params)
    again = subprocess.run(
        [sys.executable, "-m", "rt_jax.train.export", f"--workdir={trained / 'run'}", f"--out_dir={out}"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode == 2 and "Traceback" not in again.stderr  # never written over


def test_bad_input(trained, tmp_path):
    with pytest.raises(UserError, match="no config snapshot"):
        export.restore_student(tmp_path)
    with pytest.raises(UserError, match=r"--step=5: not saved .*saved steps: \[6, 12\]"):
        export.restore_student(trained / "run", 5)
    with pytest.raises(UserError, match="--step=first: expected one of best, latest"):
        export.restore_student(trained / "run", "first")
