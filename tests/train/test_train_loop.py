"""The training loop on real multiarith data with a tiny GPT-2: kill-and-resume equals an
uninterrupted run bit for bit, config guard, non-finite loss, results.json and logs."""

import io
import json
import os
import time
import types

import jax
import numpy as np
import pytest
from train_helpers import final_params, run_config, small_data, tiny_student

from rt_jax import run_dir
from rt_jax.data.pairs import TrainingPair
from rt_jax.errors import UserError
from rt_jax.train import checkpoint, export, loop, metrics

# Runs of one module compile the same train step: the persistent cache compiles it once.
pytestmark = pytest.mark.usefixtures("compilation_cache")


def params_fingerprint_eval(config, loaded, params, workdir, epoch, mesh):
    """A stand-in for decoding: an 'accuracy' that is a function of every parameter bit."""
    total = sum(float(np.asarray(x, np.float64).sum()) for x in jax.tree.leaves(jax.device_get(params)))
    return {"accuracy": total, "num_test": 1}


def run(config, workdir, examples):
    return loop.train(
        config, workdir, loaded=tiny_student(), data=small_data(config, examples), evaluate_fn=params_fingerprint_eval
    )


def test_kill_and_resume_equals_uninterrupted(tmp_path, examples):
    config = run_config(tmp_path)
    straight = run(config, tmp_path / "a", examples)
    steps_per_epoch = len(straight["epochs"]) and straight["epochs"][0]["step"]
    assert steps_per_epoch == 6  # 24 examples of ~128 bytes: one per row, batch 4

    interrupted = run_config(tmp_path, max_steps=9)  # killed mid-epoch 2, after the step-8 checkpoint
    partial = run(interrupted, tmp_path / "b", examples)
    assert [e["epoch"] for e in partial["epochs"]] == [0]
    _, meta_8, _ = final_params(tmp_path / "b")
    t0 = time.perf_counter()
    resumed = run(config, tmp_path / "b", examples)
    segment = time.perf_counter() - t0

    assert resumed["epochs"] == straight["epochs"]  # same params at every epoch end
    step_a, meta_a, params_a = final_params(tmp_path / "a")
    step_b, meta_b, params_b = final_params(tmp_path / "b")
    # wall time adds up the segments: the part up to the step-8 checkpoint, then the resumed one
    wall_8 = meta_8["wall_time_s"]
    assert 0 < wall_8 < resumed["wall_time_s"] <= wall_8 + segment
    assert step_a == step_b == 12 and {**meta_a, "wall_time_s": 0} == {**meta_b, "wall_time_s": 0}
    jax.tree.map(np.testing.assert_array_equal, params_a, params_b)

    assert straight["best"]["accuracy"] == max(e["accuracy"] for e in straight["epochs"])
    assert straight["final"]["epoch"] == 1
    on_disk = json.loads((tmp_path / "a" / "results.json").read_text())
    assert on_disk["epochs"] == straight["epochs"]
    lines = [json.loads(l) for l in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    train_lines = [l for l in lines if "train/loss" in l]
    assert [l["step"] for l in train_lines] == list(range(1, 13))
    assert all(l["train/tokens_per_s"] > 0 and 0 < l["train/mfu"] for l in train_lines)
    assert list((tmp_path / "a" / "tensorboard").glob("events.out.tfevents.*"))
    # Each step is logged once although the resumed segment replayed step 9 (its checkpoint was
    # step 8), with the uninterrupted run's values; each evaluation once too.
    for key in ("train/loss", "train/grad_norm", "eval/accuracy"):
        assert logged(tmp_path / "b", key) == logged(tmp_path / "a", key)
    assert [step for step, _ in logged(tmp_path / "b", "train/loss")] == list(range(1, 13))
    assert [step for step, _ in logged(tmp_path / "b", "eval/accuracy")] == [6, 12]


def logged(workdir, key):
    """(step, value) of every metrics.jsonl line with `key`, in file order."""
    lines = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    return [(line["step"], line[key]) for line in lines if key in line]


def test_best_of_equal_epochs_is_the_earliest_in_results_and_kept_checkpoint(tmp_path, examples):
    """Every epoch scores 0.0: results.json's best and the checkpoint kept as the best (the one
    `export --step=best` and `evaluate --checkpoint_step=best` restore) are both epoch 0's."""
    config = run_config(tmp_path, num_epochs=3, keep_checkpoints=1)
    results = loop.train(
        config,
        tmp_path / "w",
        loaded=tiny_student(),
        data=small_data(config, examples),
        evaluate_fn=lambda *args: {"accuracy": 0.0, "num_test": 1},
    )
    assert results["best"] == {"epoch": 0, "accuracy": 0.0} and results["final"]["epoch"] == 2
    ck = checkpoint.Checkpoints(tmp_path / "w" / "checkpoints")
    kept, best = ck.all_steps(), export.pick_step(ck, "best")
    ck.close()
    assert best == results["epochs"][0]["step"] == 6 and sorted(kept) == [6, 18]


def test_workdir_with_other_config_is_refused(tmp_path, examples):
    run_dir.write_snapshot(run_config(tmp_path), tmp_path / "w")
    run_dir.check(run_config(tmp_path, max_steps=3), tmp_path / "w")  # run control may differ
    snapshot = (tmp_path / "w" / "config.json").read_bytes()
    other = run_config(tmp_path, learning_rate=5e-4)
    with pytest.raises(UserError, match="different config.*train.learning_rate"):
        run(other, tmp_path / "w", examples)
    assert (tmp_path / "w" / "config.json").read_bytes() == snapshot  # nothing rewritten


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(tmp_path, examples):
    config = run_config(tmp_path, learning_rate=1e30, checkpoint_every_steps=1, num_epochs=1)
    with pytest.raises(UserError, match=r"non-finite loss .* at step (\d+)") as err:
        run(config, tmp_path / "nan", examples)
    bad_step = int(err.value.args[0].split("at step ")[1].split()[0])
    ck = checkpoint.Checkpoints(tmp_path / "nan" / "checkpoints")
    assert ck.latest_step() == bad_step - 1
    assert f"checkpoint is step {bad_step - 1}" in str(err.value)
    ck.close()


def test_batch_not_divisible_by_data_parallel_size(tmp_path, examples):
    config = run_config(tmp_path, batch_size=6)
    with pytest.raises(UserError, match="data-parallel size 4"):
        run(config, tmp_path / "odd", examples)


def test_gs_workdir_run_writes_to_the_bucket(tmp_path, examples, fake_gcs, monkeypatch):
    """A gs:// workdir: config, logs, results go to the bucket (the fake), never to a local
    `gs:` folder. Checkpoints get the gs:// directory; tensorstore cannot reach the fake bucket,
    so they are redirected to a local folder here."""
    asked = []

    class LocalCheckpoints(checkpoint.Checkpoints):
        def __init__(self, directory, **kw):
            asked.append(str(directory))
            super().__init__(tmp_path / "ckpt", **kw)

    monkeypatch.setattr(loop.ckpt_lib, "Checkpoints", LocalCheckpoints)
    monkeypatch.chdir(tmp_path)
    results = run(run_config(tmp_path, num_epochs=1), "gs://bucket/run", examples)
    assert asked == ["gs://bucket/run/checkpoints"]
    assert json.loads(fake_gcs["gs://bucket/run/results.json"].getvalue()) == results
    assert results["final"]["epoch"] == 0
    lines = fake_gcs["gs://bucket/run/metrics.jsonl"].getvalue().decode().splitlines()
    assert [json.loads(l)["step"] for l in lines if "train/loss" in l] == list(range(1, 7))
    assert "gs://bucket/run/config.json" in fake_gcs
    assert any(k.startswith("gs://bucket/run/tensorboard/events.out.tfevents.") for k in fake_gcs)
    assert sorted(os.listdir(tmp_path)) == ["ckpt"]


def test_results_name_the_teacher_data_used(tmp_path):
    config = run_config(tmp_path)
    config.method, config.teacher, config.teacher_cache_dir = "ft_cot_t70_4aug", "text-davinci-002", "/cache"
    pairs = [TrainingPair(i, "q", "r") for i in (3, 3, 5, 8, 8, 8)]  # 6 rationales of 3 questions
    counts = {"used": 6, "filtered_out": 2}
    summary = run_dir.teacher_data(config, types.SimpleNamespace(pairs=pairs, rationale_counts=counts))
    assert summary == {
        "teacher": {
            "name": "text-davinci-002",
            "cache_method": "zs_cot_t70",
            "num_rationales": 4,
            "cache_dir": "/cache",
            "rationales_used": 6,
            "rationales_filtered_out": 2,
        },
        "training_data": {"examples": 6, "questions": 3},
    }
    results = run_dir.results(config, [{"epoch": 0, "accuracy": 1.0}], 2.0, teacher_data=summary)
    run_dir.write_results(tmp_path, results)
    assert json.loads((tmp_path / "results.json").read_text()) == results
    assert results["teacher"]["num_rationales"] == 4 and results["training_data"]["questions"] == 3
    config.teacher_method = "zs_cot_t100"  # another temperature's samples, as a run setting
    assert run_dir.teacher_data(config, types.SimpleNamespace(pairs=pairs))["teacher"]["cache_method"] == (
        "zs_cot_t100"
    )
    config.method = "ft"  # vanilla fine-tuning uses no teacher, whatever the cache flag says
    assert run_dir.teacher_data(config, types.SimpleNamespace(pairs=pairs[:2]))["teacher"] is None


def test_progress_line_shows_loss_tokens_per_s_eta_and_epoch_accuracy():
    out = io.StringIO()
    log = metrics.RunLog(None, total_steps=10, enabled=False, stream=out)
    log.enabled = True  # console only: no files
    log.progress(2, 0, {"loss": 1.23456, "tokens_per_s": 812.4})
    log.progress(6, 1, {"loss": 0.5, "tokens_per_s": 900.0})
    log.epoch_result(1, {"epoch": 1, "accuracy": 12.5, "num_test": 8, "validation_accuracy": 50.0})
    first, second, third = out.getvalue().splitlines()
    assert third == "epoch 1: accuracy 12.50% on 8 test questions, validation 50.00%"
    assert first.startswith("epoch 0 [######") and "2/10 loss 1.2346 tok/s 812 ETA ?" in first
    eta = second.rsplit("ETA ", 1)[1]
    assert "6/10 loss 0.5000 tok/s 900" in second and time.strptime(eta, "%H:%M:%S")


def test_checkpoint_every_epochs_zero_saves_only_evaluated_epochs(tmp_path, examples):
    """Short epochs (the demo's ~90) need not each be saved: 0 keeps the evaluated last epoch
    only, and the run trains exactly as one that saves every epoch."""
    common = dict(num_epochs=3, checkpoint_every_steps=0, keep_checkpoints=5)
    every = run_config(tmp_path, checkpoint_every_epochs=1, **common)
    sparse = run_config(tmp_path, checkpoint_every_epochs=0, **common)
    for c in (every, sparse):
        c.eval.every_epoch = False
    a, b = run(every, tmp_path / "every", examples), run(sparse, tmp_path / "sparse", examples)
    saved = {}
    for name in ("every", "sparse"):
        ck = checkpoint.Checkpoints(tmp_path / name / "checkpoints")
        saved[name] = ck.all_steps()
        ck.close()
    assert saved == {"every": [6, 12, 18], "sparse": [18]}
    assert a["epochs"] == b["epochs"] and a["final"]["accuracy"] == b["final"]["accuracy"]
    jax.tree.map(
        np.testing.assert_array_equal, final_params(tmp_path / "every")[2], final_params(tmp_path / "sparse")[2]
    )
