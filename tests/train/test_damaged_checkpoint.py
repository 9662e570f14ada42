"""A damaged latest checkpoint (its largest state file cut short): a resume goes back to the
newest step that restores, says which one it skipped and why, moves the damaged one aside (never
deleted) and ends where the undamaged run ended; export and evaluation name the damaged step in
one line, with the flag the user typed."""

import logging
import shutil

import jax
import numpy as np
import pytest
from train_helpers import final_params, run_config, small_data, tiny_student

from rt_jax import models, run_dir
from rt_jax.errors import UserError
from rt_jax.train import export, loop

pytestmark = pytest.mark.usefixtures("compilation_cache")


def accuracy_by_epoch(config, loaded, params, workdir, epoch, mesh):
    return {"accuracy": 90.0 - epoch, "num_test": 1}


def damage(checkpoint_dir):
    """Cuts the largest file under <step>/state/ to 10 bytes (the campaign's recipe)."""
    largest = max((p for p in (checkpoint_dir / "state").rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    with open(largest, "r+b") as f:
        f.truncate(10)
    return largest


@pytest.fixture(scope="module")
def trained(tmp_path_factory, examples):
    root = tmp_path_factory.mktemp("damaged")
    student = tiny_student()
    models.save_pretrained(student, root / "init")
    config = run_config(root)
    config.model_path = str(root / "init")
    loop.train(config, root / "run", loaded=student, data=small_data(config, examples), evaluate_fn=accuracy_by_epoch)
    return root, config


def damaged_copy(trained, tmp_path):
    root, config = trained
    shutil.copytree(root / "run", tmp_path / "run")
    damage(tmp_path / "run" / "checkpoints" / "12")
    return tmp_path / "run", config


def test_resume_goes_back_past_a_damaged_latest_checkpoint(trained, tmp_path, examples, caplog):
    workdir, config = damaged_copy(trained, tmp_path)
    # the finished run, resumed: step 12 is damaged, step 10 restores and steps 11-12 are redone
    with caplog.at_level(logging.WARNING):
        loop.train(
            config, workdir, loaded=tiny_student(), data=small_data(config, examples), evaluate_fn=accuracy_by_epoch
        )
    skipped = [r.getMessage() for r in caplog.records if "does not restore" in r.getMessage()]
    assert len(skipped) == 1 and skipped[0].startswith(f"checkpoint step 12 in {workdir / 'checkpoints'}")
    moved = workdir / run_dir.DAMAGED_CHECKPOINTS_DIR / "12"
    assert f"skipped it, moved to {moved}" in skipped[0] and (moved / "state").is_dir()
    step, _, params = final_params(workdir)
    _, _, undamaged = final_params(trained[0] / "run")
    assert step == 12
    jax.tree.map(np.testing.assert_array_equal, undamaged, params)  # bitwise the run's end


def test_no_checkpoint_restores(trained, tmp_path, examples):
    workdir, config = damaged_copy(trained, tmp_path)
    for step in (6, 10):
        damage(workdir / "checkpoints" / str(step))
    with pytest.raises(UserError, match=r"no checkpoint restores: checkpoint step 12 .* and the 2 older one\(s\)"):
        loop.train(config, workdir, loaded=tiny_student(), data=small_data(config, examples))
    assert sorted(p.name for p in (workdir / "checkpoints").iterdir() if p.name.isdigit()) == ["10", "12", "6"]


def test_export_and_evaluate_name_the_damaged_step_and_their_flag(trained, tmp_path):
    workdir, _ = damaged_copy(trained, tmp_path)
    for flag in ("--step", "--checkpoint_step"):
        with pytest.raises(UserError) as err:
            export.restore_student(workdir, "latest", flag=flag)
        line = str(err.value)
        assert "\n" not in line and line.startswith(f"{flag}=latest: checkpoint step 12 in ")
        assert "does not restore (" in line and line.endswith(f"choose another with {flag}= (saved steps: [6, 10])")
    with pytest.raises(UserError, match="^--checkpoint_step=9999: not saved in"):
        export.restore_student(workdir, 9999, flag="--checkpoint_step")
    _, step = export.restore_student(workdir, 10)  # another step is still there
    assert step == 10 and (workdir / "checkpoints" / "12").is_dir()  # read-only commands move nothing


def test_a_checkpoint_without_state(trained, tmp_path):
    workdir, _ = damaged_copy(trained, tmp_path)
    shutil.rmtree(workdir / "checkpoints" / "10" / "state")
    with pytest.raises(UserError, match=r"^--step=10: checkpoint step 10 in .* does not restore \("):
        export.restore_student(workdir, 10)
