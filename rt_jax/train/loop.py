"""The training run: config -> student + batches -> epochs of sharded train steps, checkpoints,
per-epoch evaluation, results.json. Re-running in the same workdir resumes from the latest
checkpoint with the same data order and RNG, so an interrupted run ends where an
uninterrupted one does."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from etils import epath

from rt_jax import parallel
from rt_jax.errors import UserError
from rt_jax.train import checkpoint as ckpt_lib
from rt_jax.train import metrics as metrics_lib
from rt_jax.train import optim, storage
from rt_jax.train import state as state_lib
from rt_jax.train import step as step_lib

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
RESULTS_FILE = "results.json"
# Fields that steer how far a run goes, not what it computes: may differ on resume.
# (Each host of a multi-host run has its own process_id; a restart may get a new coordinator.)
RUN_CONTROL_FIELDS = (("train", "max_steps"), ("distributed", "process_id"), ("distributed", "coordinator_address"))


# ------------------------------------------------------------------ workdir and config snapshot
def _comparable(config) -> dict:
    d = json.loads(config.to_json_best_effort())
    for section, field in RUN_CONTROL_FIELDS:
        d.get(section, {}).pop(field, None)
    return d


def claim_workdir(config, workdir: str | os.PathLike, write: bool = True) -> None:
    """Writes the config snapshot, or checks that the workdir's snapshot is this config."""
    workdir = storage.workdir_path(workdir)
    path = workdir / CONFIG_FILE
    if path.exists():
        saved = json.loads(path.read_text(encoding="utf-8"))
        for section, field in RUN_CONTROL_FIELDS:
            saved.get(section, {}).pop(field, None)
        mine = _comparable(config)
        if saved != mine:
            diff = sorted(_diff_keys(saved, mine))
            raise UserError(
                f"{path}: this workdir belongs to a run with a different config "
                f"(differs in {', '.join(diff[:5])}); use a new --workdir"
            )
        return
    if write:
        workdir.mkdir(parents=True, exist_ok=True)
        storage.write_text_atomic(path, config.to_json_best_effort(indent=2, sort_keys=True) + "\n")


def _diff_keys(a: dict, b: dict, prefix: str = "") -> set[str]:
    out = set()
    for k in set(a) | set(b):
        va, vb = a.get(k), b.get(k)
        if isinstance(va, dict) and isinstance(vb, dict):
            out |= _diff_keys(va, vb, f"{prefix}{k}.")
        elif va != vb:
            out.add(prefix + k)
    return out


# ------------------------------------------------------------------ task, student and data
def ensure_task(config) -> None:
    """Checks config.task before any work: a paper task, or one written into config.data_dir
    (the demo's `arith_small`); a UserError naming the known tasks otherwise."""
    from rt_jax.tasks import registry

    registry.task_info(config.task, config.data_dir)


def load_student(config, mesh=None):
    """The student named by config.model_path (a directory) or config.student (paper name); with
    a mesh, its parameters are read straight into their training shardings."""
    from rt_jax import models

    dtype = jnp.dtype(config.train.compute_dtype)
    param_dtype = jnp.dtype(config.train.param_dtype)
    options = {"remat": True} if config.train.remat == "layer" else {}
    source = config.model_path or models.registry.hub_id(config.student)
    return models.from_pretrained(source, dtype=dtype, param_dtype=param_dtype, mesh=mesh, **options)


def build_data(config, loaded):
    from rt_jax.data.pipeline import build_training_data
    from rt_jax.decoding.driver import context_length

    start = getattr(loaded.config, "decoder_start_token_id", None) or 0
    return build_training_data(
        config,
        loaded.tokenizer,
        loaded.family,
        context_length=context_length(loaded.config),
        decoder_start_token_id=start,
    )


def eval_examples(config) -> tuple[list, list]:
    """(test examples, validation examples) for per-epoch evaluation."""
    from rt_jax.data.pairs import split_validation
    from rt_jax.tasks import load_dataset, load_split

    split = load_split(config.task, config.data_dir, config.get("split", "default"))
    dataset = load_dataset(config.task, config.data_dir)
    _, validation = split_validation(split.train, config.eval.validation_fraction, config.seed)
    return dataset.select(split.test), dataset.select(validation) if validation else []


def decode_config(config):
    from rt_jax.decoding import DecodeConfig

    e = config.eval
    return DecodeConfig(
        strategy=e.strategy,
        max_new_tokens=e.max_new_tokens,
        num_beams=e.num_beams,
        temperature=e.temperature,
        batch_size=e.batch_size,
        seed=config.seed,
    )


def default_evaluate(config, loaded, params, workdir: epath.Path, epoch: int, mesh) -> dict[str, Any]:
    """Decodes and scores the test split (and the validation split, when configured)."""
    from rt_jax.train.evaluation import evaluate

    test, validation = eval_examples(config)
    template = config.template or config.method
    common = dict(
        decode_config=decode_config(config), epoch=epoch, mesh=mesh, student=config.student, method=config.method
    )
    out = evaluate(loaded, params, config.task, test, template, out_dir=workdir / "predictions", **common)
    result = {"accuracy": out["accuracy"], "num_test": out["num_test"]}
    if validation:
        val = evaluate(
            loaded, params, config.task, validation, template, out_dir=workdir / "predictions" / "validation", **common
        )
        result["validation_accuracy"] = val["accuracy"]
    return result


# ------------------------------------------------------------------ results.json
def training_data_summary(config, data) -> dict:
    """The data a run trains on: teacher rationales (which teacher, cache method, D, cache, how
    many were used after the correctness filter) or gold answers only (`ft`)."""
    from rt_jax import methods

    pairs = getattr(data, "pairs", None)  # tests may hand in batches without their pairs
    used = {} if pairs is None else {"examples": len(pairs), "questions": len({p.sample_index for p in pairs})}
    source = methods.rationale_source(config.method, config.get("teacher_method", ""))
    teacher = (
        None
        if source is None
        else {
            "name": config.teacher,
            "cache_method": source.teacher_method,
            "num_rationales": source.num_rationales,
            "cache_dir": str(config.teacher_cache_dir),
        }
    )
    return {"teacher": teacher, "training_data": used}


def write_results(
    config, workdir: epath.Path, epochs: list[dict], wall_time_s: float, data_summary: dict | None = None
) -> dict:
    scored = [e for e in epochs if e.get("accuracy") is not None]
    best = max(scored, key=lambda e: e["accuracy"]) if scored else None
    results = {
        "task": config.task,
        "method": config.method,
        "student": config.student,
        "seed": config.seed,
        "teacher": None,
        "training_data": {},
        **(data_summary or {}),
        "epochs": epochs,
        "best": {"epoch": best["epoch"], "accuracy": best["accuracy"]} if best else None,
        "final": ({"epoch": scored[-1]["epoch"], "accuracy": scored[-1]["accuracy"]} if scored else None),
        "wall_time_s": wall_time_s,  # all segments of a resumed run (up to their last checkpoint)
    }
    if any("validation_accuracy" in e for e in epochs):
        best_val = max((e for e in epochs if "validation_accuracy" in e), key=lambda e: e["validation_accuracy"])
        results["best_by_validation"] = {
            "epoch": best_val["epoch"],
            "accuracy": best_val["accuracy"],
            "validation_accuracy": best_val["validation_accuracy"],
        }
    if jax.process_index() == 0:
        storage.write_text_atomic(workdir / RESULTS_FILE, json.dumps(results, indent=2) + "\n")
    return results


# ------------------------------------------------------------------ the run
class NonFiniteLoss(UserError):
    pass


def train(config, workdir, *, loaded=None, data=None, evaluate_fn=None, devices=None, stream=None) -> dict:
    """Runs (or resumes) the training run of `config` in `workdir`; returns results.json's dict.

    `loaded` / `data` / `evaluate_fn(config, loaded, params, workdir, epoch, mesh)` replace the
    defaults (student from config, batches from the teacher cache, test-split decoding)."""
    wall_start = time.perf_counter()
    workdir = storage.workdir_path(workdir)  # a local folder or gs://bucket/run
    parallel.initialize_distributed(config.distributed)
    is_chief = jax.process_index() == 0
    claim_workdir(config, workdir, write=False)  # refuse another run's workdir before any work
    ensure_task(config)
    mesh = parallel.make_mesh(config.mesh, devices)
    t = config.train
    parallel.check_batch_size(t.batch_size, mesh, t.grad_accum_steps)
    loaded = loaded or load_student(config, mesh)
    data = data or build_data(config, loaded)
    iterator = data.iterator
    claim_workdir(config, workdir, write=is_chief)  # the snapshot only once the config is valid
    evaluate_fn = evaluate_fn or default_evaluate

    total_steps = iterator.steps_per_epoch * t.num_epochs
    optimizer = optim.make_optimizer(t, total_steps)
    schedule = optim.learning_rate_schedule(t, total_steps)
    from rt_jax.models import logical_axes

    abstract = state_lib.abstract_state(loaded.params, optimizer)
    shardings = state_lib.state_shardings(abstract, logical_axes(loaded), mesh, optimizer)
    checkpoints = ckpt_lib.Checkpoints(workdir / "checkpoints", keep=t.keep_checkpoints)

    start_epoch, epochs_done, wall_before = 0, [], 0.0
    latest = checkpoints.latest_step()
    if latest is not None:
        state, saved = checkpoints.restore(latest, ckpt_lib.sharded_target(abstract, shardings))
        iterator.restore(saved["data"])
        start_epoch, epochs_done = saved["epoch"], saved["epochs"]
        wall_before = saved.get("wall_time_s", 0.0)  # earlier segments, up to that checkpoint
        log.info("resuming from step %d (epoch %d)", latest, start_epoch)
    else:
        state = state_lib.create_state(loaded.params, optimizer, shardings)
    # from here on the train state owns the (donated) params; evaluation gets them explicitly
    loaded = dataclasses.replace(loaded, params=None)

    keys = step_lib.batch_keys(loaded.is_encoder_decoder)
    fn = step_lib.make_train_step(
        loaded.module,
        loaded.is_encoder_decoder,
        optimizer,
        schedule,
        compute_dtype=jnp.dtype(t.compute_dtype),
        grad_accum_steps=t.grad_accum_steps,
        remat=t.remat,
        dropout=t.dropout,
        mesh=mesh,
    )
    train_step = step_lib.jit_train_step(fn, shardings, mesh, keys)
    rng = jax.random.PRNGKey(config.seed)

    num_params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(abstract.params))
    peak = metrics_lib.device_peak_flops() * mesh.devices.size
    runlog = metrics_lib.RunLog(workdir, total_steps, enabled=is_chief, stream=stream)
    summary = training_data_summary(config, data)
    pending: list[tuple[int, Any]] = []  # (step, device metrics) not yet checked on the host
    window = {"useful": 0, "slots": 0, "flops": 0.0, "time": time.perf_counter()}
    last_good = latest

    def meta(epoch):
        """Where to go on from: `epoch` (the one in progress, or the next after an epoch end)."""
        return {"epoch": epoch, "data": iterator.state_dict(), "epochs": epochs_done, "wall_time_s": wall()}

    def wall():
        return wall_before + time.perf_counter() - wall_start

    def results():
        return write_results(config, workdir, epochs_done, wall(), summary)

    def flush(step, epoch):
        """Fetches pending metrics (one host sync), stops at the first non-finite loss, logs."""
        nonlocal pending
        if not pending:
            return
        fetched = jax.device_get([m for _, m in pending])
        for (s, _), m in zip(pending, fetched):
            if not (math.isfinite(m["loss"]) and math.isfinite(m["grad_norm"])):
                runlog.close()
                checkpoints.close()
                raise NonFiniteLoss(
                    f"non-finite loss ({m['loss']}) or gradient norm at step {s + 1} (epoch {epoch}); "
                    f"training stopped; the last good checkpoint is step {last_good} in {checkpoints.directory}"
                )
        pending = []
        now = time.perf_counter()
        elapsed = max(now - window["time"], 1e-9)
        last = dict(jax.tree.map(float, fetched[-1]))
        last["tokens_per_s"] = window["useful"] / elapsed
        last["slot_tokens_per_s"] = window["slots"] / elapsed
        last["mfu"] = window["flops"] / elapsed / peak
        window.update(useful=0, slots=0, flops=0.0, time=now)
        runlog.write(step, last)
        runlog.progress(step, epoch, last)

    def save(epoch, accuracy=None):
        nonlocal last_good
        checkpoints.save(state, meta(epoch), accuracy=accuracy)
        last_good = int(state.step)

    step = int(jax.device_get(state.step))
    max_steps = t.max_steps if t.max_steps >= 0 else None
    try:
        for epoch in range(start_epoch, t.num_epochs):
            for batch in iterator.epoch_batches(epoch):
                if max_steps is not None and step >= max_steps:  # stop as if killed here
                    flush(step, epoch)
                    checkpoints.wait()
                    return results()
                useful, slots = metrics_lib.batch_token_counts(batch)
                width = max(v.shape[1] for v in batch.values())
                state, m = train_step(state, parallel.global_batch(batch, mesh), rng)
                pending.append((step, m))
                step += 1
                hosts = jax.process_count()
                window["useful"] += useful * hosts
                window["slots"] += slots * hosts
                window["flops"] += metrics_lib.flops_per_token(loaded.config, num_params, width) * slots * hosts
                if step % t.log_every_steps == 0:
                    flush(step, epoch)
                if (
                    t.checkpoint_every_steps
                    and step % t.checkpoint_every_steps == 0
                    and step % iterator.steps_per_epoch
                ):  # epoch ends are saved below
                    flush(step, epoch)
                    save(epoch)
            flush(step, epoch)
            # Evaluate, then save once with the accuracy (a kill during evaluation resumes from
            # the last step checkpoint and redoes the rest of this epoch identically).
            record = {"epoch": epoch, "step": step, "accuracy": None, "num_test": 0}
            if config.eval.every_epoch or epoch == t.num_epochs - 1:
                record.update(evaluate_fn(config, loaded, state.params, workdir, epoch, mesh))
                runlog.write(step, {k: v for k, v in record.items() if k.endswith("accuracy")}, prefix="eval")
                runlog.epoch_result(epoch, record)
                window["time"] = time.perf_counter()  # tokens/s counts training time only
            epochs_done = epochs_done + [record]
            # every `checkpoint_every_epochs`-th epoch end (0: evaluated ones only); a resume
            # replays the epochs after the last save identically
            every = t.get("checkpoint_every_epochs", 1)
            if record["num_test"] or (every and (epoch + 1) % every == 0):
                save(epoch + 1, accuracy=record["accuracy"])
            results()
        checkpoints.wait()
        return results()
    finally:
        runlog.close()
        checkpoints.close()
