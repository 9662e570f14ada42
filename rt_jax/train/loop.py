"""The training run: config -> student + batches -> epochs of sharded train steps, checkpoints,
per-epoch evaluation, results.json. Re-running in the same workdir resumes from the latest
checkpoint with the same data order and RNG, so an interrupted run ends where an
uninterrupted one does.

`train` checks the run before any work (workdir: rt_jax.run_dir; every setting:
rt_jax.configs.validate; the teacher cache's lines: rt_jax.data.pipeline), locks the
workdir, loads the student and its data, and hands over to a `Segment`: this process's part of
the run, from a fresh start or the latest checkpoint up to the last epoch or train.max_steps."""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from rt_jax import parallel, run_dir
from rt_jax.configs.validate import validate_run
from rt_jax.data.pipeline import check_teacher_cache
from rt_jax.errors import UserError
from rt_jax.student import load_student
from rt_jax.train import checkpoint as ckpt_lib
from rt_jax.train import metrics as metrics_lib
from rt_jax.train import optim
from rt_jax.train import state as state_lib
from rt_jax.train import step as step_lib

log = logging.getLogger(__name__)

# evaluate_fn(config, loaded, params, workdir, epoch, mesh) -> {"accuracy", "num_test", ...}
EvaluateFn = Callable[..., dict[str, Any]]


class NonFiniteLoss(UserError):
    pass


# ------------------------------------------------------------------ task and data
def ensure_task(config) -> None:
    """Checks config.task before any work: a paper task, or one written into config.data_dir
    (the demo's `arith_small`); a UserError naming the known tasks otherwise."""
    from rt_jax.tasks import registry

    registry.task_info(config.task, config.data_dir)


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


# ------------------------------------------------------------------ the run
def train(
    config,
    workdir,
    *,
    loaded=None,
    data=None,
    evaluate_fn: EvaluateFn | None = None,
    devices=None,
    stream=None,
    label: str = "",
) -> dict:
    """Runs (or resumes) the training run of `config` in `workdir`; returns results.json's dict.

    `loaded` / `data` / `evaluate_fn(config, loaded, params, workdir, epoch, mesh)` replace the
    defaults (student from config, batches from the teacher cache, rt_jax.evaluation's
    evaluate_epoch)."""
    wall_start = time.perf_counter()
    workdir = run_dir.path(workdir)  # a local folder or gs://bucket/run
    parallel.initialize_distributed(config.distributed)
    is_chief = jax.process_index() == 0
    run_dir.check(config, workdir)  # refuse another run's workdir, or one we cannot write, before any work
    num_devices = len(jax.devices() if devices is None else devices)
    validate_run(config, training=True, loads_student=loaded is None, num_devices=num_devices)
    if data is None:
        check_teacher_cache(config)  # bad cache lines: refused (or reported) before the student loads
    mesh = parallel.make_mesh(config.mesh, devices)
    parallel.check_batch_size(config.train.batch_size, mesh, config.train.grad_accum_steps)
    with run_dir.lock(workdir, enabled=is_chief):  # the other hosts share the chief's workdir
        loaded = loaded or load_student(config, mesh=mesh)
        data = data or build_data(config, loaded)
        if is_chief:
            run_dir.write_snapshot(config, workdir)  # the snapshot only once the config is valid
        if evaluate_fn is None:
            from rt_jax.evaluation import evaluate_epoch as evaluate_fn
        segment = Segment(config, workdir, loaded, data, mesh, evaluate_fn, stream, wall_start, label)
        del loaded  # the train state owns the params now (donated): hold no other reference
        try:
            return segment.run()
        finally:
            segment.close()


class Segment:
    """One process's part of a training run: the train state (restored from the latest
    checkpoint, or fresh), the compiled step, the logs, and the epochs still to do."""

    def __init__(
        self, config, workdir, loaded, data, mesh, evaluate_fn: EvaluateFn, stream, wall_start: float, label: str = ""
    ):
        from rt_jax.models import logical_axes

        t = config.train
        self.config, self.workdir, self.mesh, self.evaluate_fn = config, workdir, mesh, evaluate_fn
        self.iterator = data.iterator
        self.total_steps = self.iterator.steps_per_epoch * t.num_epochs
        optimizer = optim.make_optimizer(t, self.total_steps)
        abstract = state_lib.abstract_state(loaded.params, optimizer)
        shardings = state_lib.state_shardings(abstract, logical_axes(loaded), mesh, optimizer)
        self.checkpoints = ckpt_lib.Checkpoints(workdir / run_dir.CHECKPOINTS_DIR, keep=t.keep_checkpoints)
        self.wall_start, self.wall_before = wall_start, 0.0
        self.start_epoch, self.epochs = 0, []
        restored = self.checkpoints.restore_newest(
            ckpt_lib.sharded_target(abstract, shardings), move_aside=jax.process_index() == 0
        )
        if restored is not None:
            self.state = self._resume(*restored)
        else:
            self.last_good = None
            self.state = state_lib.create_state(loaded.params, optimizer, shardings)
        # from here on the train state owns the (donated) params; evaluation gets them explicitly
        self.loaded = dataclasses.replace(loaded, params=None)
        self.train_step = self._compile(optimizer, shardings)
        self.rng = jax.random.PRNGKey(config.seed)
        num_params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(abstract.params))
        hf_config = loaded.config
        self.flops_per_token = lambda width: metrics_lib.flops_per_token(hf_config, num_params, width)
        peak = metrics_lib.device_peak_flops() * mesh.devices.size
        self.log = metrics_lib.RunLog(
            workdir, self.total_steps, enabled=jax.process_index() == 0, stream=stream, label=label
        )
        self.teacher_data = run_dir.teacher_data(config, data)
        self.pending: list[tuple[int, Any]] = []  # (step, device metrics) not yet checked on the host
        self.step = int(jax.device_get(self.state.step))
        self.throughput = metrics_lib.Throughput(peak)

    def _resume(self, step: int, state, saved: dict, skipped: list[str]):
        for line in skipped:  # a damaged newer checkpoint: say which and why
            log.warning("%s", line)
        self.last_good = step
        self.iterator.restore(saved["data"])
        self.start_epoch, self.epochs = saved["epoch"], saved["epochs"]
        self.wall_before = saved.get("wall_time_s", 0.0)  # earlier segments, up to that checkpoint
        log.info("resuming from step %d (epoch %d)", self.last_good, self.start_epoch)
        return state

    def _compile(self, optimizer, shardings):
        t = self.config.train
        total = self.total_steps
        fn = step_lib.make_train_step(
            self.loaded.module,
            self.loaded.is_encoder_decoder,
            optimizer,
            optim.learning_rate_schedule(t, total),
            compute_dtype=jnp.dtype(t.compute_dtype),
            grad_accum_steps=t.grad_accum_steps,
            remat=t.remat,
            dropout=t.dropout,
            mesh=self.mesh,
        )
        return step_lib.jit_train_step(fn, shardings, self.mesh, step_lib.batch_keys(self.loaded.is_encoder_decoder))

    # ---- the epochs
    def run(self) -> dict:
        """Trains the remaining epochs (or up to train.max_steps, as if killed there); returns
        results.json's dict."""
        for epoch in range(self.start_epoch, self.config.train.num_epochs):
            if not self.train_epoch(epoch):
                self.checkpoints.wait()
                return self.write_results()
            self.end_epoch(epoch)
        self.checkpoints.wait()
        return self.write_results()

    def train_epoch(self, epoch: int) -> bool:
        """The epoch's steps; False when train.max_steps stopped it."""
        t = self.config.train
        max_steps = t.max_steps if t.max_steps >= 0 else None
        for batch in self.iterator.epoch_batches(epoch):
            if max_steps is not None and self.step >= max_steps:  # stop as if killed here
                self.flush(epoch)
                return False
            self.train_on(batch)
            if self.step % t.log_every_steps == 0:
                self.flush(epoch)
            if t.checkpoint_every_steps and self.step % t.checkpoint_every_steps == 0:
                if self.step % self.iterator.steps_per_epoch:  # epoch ends are saved by end_epoch
                    self.flush(epoch)
                    self.save(epoch)
        self.flush(epoch)
        return True

    def train_on(self, batch) -> None:
        useful, slots = metrics_lib.batch_token_counts(batch)
        width = max(v.shape[1] for v in batch.values())
        self.state, m = self.train_step(self.state, parallel.global_batch(batch, self.mesh), self.rng)
        self.pending.append((self.step, m))
        self.step += 1
        hosts = jax.process_count()
        self.throughput.add(useful * hosts, slots * hosts, self.flops_per_token(width) * slots * hosts)

    def end_epoch(self, epoch: int) -> None:
        """Evaluates (when due), then saves once with the accuracy: a kill during evaluation
        resumes from the last step checkpoint and redoes the rest of this epoch identically."""
        c, t = self.config, self.config.train
        record = {"epoch": epoch, "step": self.step, "accuracy": None, "num_test": 0}
        if c.eval.every_epoch or epoch == t.num_epochs - 1:
            record.update(self.evaluate_fn(c, self.loaded, self.state.params, self.workdir, epoch, self.mesh))
            self.log.write(self.step, {k: v for k, v in record.items() if k.endswith("accuracy")}, prefix="eval")
            self.log.epoch_result(epoch, record)
            self.throughput.restart()  # tokens/s counts training time only
        self.epochs = self.epochs + [record]
        # every `checkpoint_every_epochs`-th epoch end (0: evaluated ones only); a resume
        # replays the epochs after the last save identically
        every = t.get("checkpoint_every_epochs", 1)
        if record["num_test"] or (every and (epoch + 1) % every == 0):
            self.save(epoch + 1, accuracy=record["accuracy"])
        self.write_results()

    # ---- host syncs, checkpoints, results
    def flush(self, epoch: int) -> None:
        """Fetches pending metrics (one host sync), stops at the first non-finite loss, logs."""
        if not self.pending:
            return
        fetched = jax.device_get([m for _, m in self.pending])
        for (s, _), m in zip(self.pending, fetched):
            if not (math.isfinite(m["loss"]) and math.isfinite(m["grad_norm"])):
                raise NonFiniteLoss(
                    f"non-finite loss ({m['loss']}) or gradient norm at step {s + 1} (epoch {epoch}); "
                    f"training stopped; the last good checkpoint is step {self.last_good} in "
                    f"{self.checkpoints.directory}"
                )
        self.pending = []
        last = dict(jax.tree.map(float, fetched[-1]))
        last.update(self.throughput.rates())
        self.log.write(self.step, last)
        self.log.progress(self.step, epoch, last)

    def save(self, epoch: int, accuracy: float | None = None) -> None:
        """A checkpoint to go on from at `epoch` (the one in progress, or the next after an epoch end)."""
        meta = {"epoch": epoch, "data": self.iterator.state_dict(), "epochs": self.epochs, "wall_time_s": self.wall()}
        self.checkpoints.save(self.state, meta, accuracy=accuracy)
        self.last_good = int(self.state.step)

    def wall(self) -> float:
        """Wall time of the run: the earlier segments up to their last checkpoint, and this one."""
        return self.wall_before + time.perf_counter() - self.wall_start

    def write_results(self) -> dict:
        result = run_dir.results(self.config, self.epochs, self.wall(), teacher_data=self.teacher_data)
        if jax.process_index() == 0:
            run_dir.write_results(self.workdir, result)
        return result

    def close(self) -> None:
        self.log.close()
        self.checkpoints.close()
