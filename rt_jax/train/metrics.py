"""Training metrics: FLOP estimates, device peaks for MFU, throughput over a logging window,
and the run's logs (JSON lines, TensorBoard event files via tensorboardX, a console progress
bar). A workdir in a bucket gets its logs through a local mirror copied up every
`remote_flush_s` and at the end. A resumed run replays the steps after its last checkpoint:
each step (and each evaluation) is logged once, by the segment that first reached it."""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from typing import Any, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from rt_jax import run_dir
from rt_jax.models import family
from rt_jax.train import storage

# Dense bf16 peak FLOP/s per chip, by a substring of jax's device_kind (first match wins).
PEAK_FLOPS = (
    ("TPU v6", 918e12),
    ("TPU v5p", 459e12),
    ("TPU v5 lite", 197e12),
    ("TPU v5e", 197e12),
    ("TPU v5", 459e12),
    ("TPU v4", 275e12),
    ("TPU v3", 123e12),
    ("TPU v2", 45e12),
    ("H200", 989e12),
    ("H100", 989e12),
    ("A100", 312e12),
    ("L40S", 362e12),
    ("L4", 121e12),
    ("A10", 125e12),
    ("V100", 125e12),
    ("T4", 65e12),
)


@functools.lru_cache(maxsize=None)
def measured_matmul_peak(n: int = 2048, dtype: str = "float32", repeats: int = 5) -> float:
    """FLOP/s of a jitted n x n matmul on the default device, best of `repeats`: the peak that
    CPU runs are compared against (no table entry can know a CPU)."""
    x = jnp.ones((n, n), dtype)
    f = jax.jit(lambda a, b: a @ b)
    f(x, x).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        f(x, x).block_until_ready()
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def device_peak_flops(device=None) -> float:
    """Peak FLOP/s of one device: the table for TPUs/GPUs, a measured matmul on CPU."""
    device = device or jax.devices()[0]
    kind = getattr(device, "device_kind", "")
    for name, peak in PEAK_FLOPS:
        if name.lower() in kind.lower():
            return peak
    return measured_matmul_peak()


def flops_per_token(hf_config, num_params: int, seq_len: int) -> float:
    """Training FLOPs per token of the config's model family (rt_jax.models.family
    dense_flops_per_token: 6N plus attention); an unknown model_type is a UserError."""
    return family.for_config(hf_config).flops_per_token(hf_config, num_params, seq_len)


def _ends_with_newline(path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) == b"\n"


def batch_token_counts(batch: Mapping[str, np.ndarray]) -> tuple[int, int]:
    """(useful tokens, token slots) of a host batch: non-padding vs all positions."""
    seg_keys = [k for k in ("segment_ids", "encoder_segment_ids", "decoder_segment_ids") if k in batch]
    useful = sum(int(np.count_nonzero(batch[k])) for k in seg_keys)
    slots = sum(int(batch[k].size) for k in seg_keys)
    return useful, slots


class Throughput:
    """Tokens per second and model-FLOPs utilisation over the steps since the last `rates`;
    time spent outside training (evaluation) is left out by calling `restart`."""

    def __init__(self, peak_flops: float):
        self.peak_flops = peak_flops
        self.restart()

    def restart(self) -> None:
        self.useful, self.slots, self.flops, self.start = 0, 0, 0.0, time.perf_counter()

    def add(self, useful: int, slots: int, flops: float) -> None:
        """One step: its real tokens, its token slots (padding included) and its FLOPs, all hosts."""
        self.useful += useful
        self.slots += slots
        self.flops += flops

    def rates(self) -> dict[str, float]:
        """{"tokens_per_s", "slot_tokens_per_s", "mfu"} of the window, then a new window."""
        elapsed = max(time.perf_counter() - self.start, 1e-9)
        out = {
            "tokens_per_s": self.useful / elapsed,
            "slot_tokens_per_s": self.slots / elapsed,
            "mfu": self.flops / elapsed / self.peak_flops,
        }
        self.restart()
        return out


def last_steps(path) -> dict[str, int]:
    """prefix ("train", "eval") -> the last step a metrics.jsonl already has a line of."""
    last: dict[str, int] = {}
    if not os.path.exists(path):
        return last
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                record = json.loads(line)
                step = int(record["step"])
            except (ValueError, KeyError, TypeError):
                continue  # a line cut by a kill: not a step
            for key in record:
                if "/" in key:
                    prefix = key.split("/", 1)[0]
                    last[prefix] = max(last.get(prefix, step), step)
    return last


class RunLog:
    """metrics.jsonl + TensorBoard events + a progress line; only process 0 writes. `label`
    (e.g. the method) starts every console line, for runs whose output shares a terminal."""

    def __init__(
        self,
        workdir: str | os.PathLike,
        total_steps: int,
        enabled: bool = True,
        stream=None,
        remote_flush_s: float = 30.0,
        label: str = "",
    ):
        self.enabled = enabled
        self.prefix = f"[{label}] " if label else ""
        self.total_steps = total_steps
        self.stream = stream or sys.stderr
        self._writer = None
        self._jsonl = None
        self._logged: dict[str, int] = {}  # prefix -> last step with a line
        self._mirror = None
        self._start = time.perf_counter()
        self._start_step = None
        if enabled:
            from tensorboardX import SummaryWriter  # event files without TensorFlow

            workdir = storage.workdir_path(workdir)
            if not storage.is_local(workdir):
                # no appends on object stores: write here, copy whole files up
                self._mirror = storage.Mirror(workdir, min_interval_s=remote_flush_s)
                local = self._mirror.local
                jsonl = self._mirror.fetch(run_dir.METRICS_FILE)
            else:
                local, jsonl = workdir, workdir / run_dir.METRICS_FILE
            self._logged = last_steps(jsonl)
            self._writer = SummaryWriter(os.fspath(local / run_dir.TENSORBOARD_DIR))
            self._jsonl = open(jsonl, "a", encoding="utf-8")
            if self._jsonl.tell() and not _ends_with_newline(jsonl):
                self._jsonl.write("\n")  # after a line cut by a kill, start a whole one

    def write(self, step: int, metrics: Mapping[str, Any], prefix: str = "train") -> None:
        """One line of metrics at `step`, unless the log has one of `prefix` at this step or a
        later one already (a step replayed after a resume)."""
        if not self.enabled or step <= self._logged.get(prefix, -1):
            return
        self._logged[prefix] = step
        record = {"step": step, **{f"{prefix}/{k}": float(v) for k, v in metrics.items()}}
        self._jsonl.write(json.dumps(record) + "\n")
        self._jsonl.flush()
        for k, v in metrics.items():
            self._writer.add_scalar(f"{prefix}/{k}", float(v), step)
        self._writer.flush()
        if self._mirror:
            self._mirror.push()

    def progress(self, step: int, epoch: int, metrics: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        if self._start_step is None:
            self._start_step, self._start = step, time.perf_counter()
            eta = "?"
        else:
            rate = (step - self._start_step) / max(time.perf_counter() - self._start, 1e-9)
            left = (self.total_steps - step) / rate if rate > 0 else 0
            eta = time.strftime("%H:%M:%S", time.gmtime(left))
        done = int(30 * step / max(self.total_steps, 1))
        line = self.prefix + (
            f"epoch {epoch} [{'#' * done}{'.' * (30 - done)}] {step}/{self.total_steps} "
            f"loss {metrics.get('loss', float('nan')):.4f} tok/s {metrics.get('tokens_per_s', 0):.0f} ETA {eta}"
        )
        end = "\r" if self.stream.isatty() else "\n"
        print(line, end=end, file=self.stream, flush=True)

    def epoch_result(self, epoch: int, record: Mapping[str, Any]) -> None:
        """One console line per evaluated epoch, so a user sees accuracy as it comes."""
        if not self.enabled or record.get("accuracy") is None:
            return
        val = record.get("validation_accuracy")
        line = (
            self.prefix
            + f"epoch {epoch}: accuracy {record['accuracy']:.2f}% on {record.get('num_test', '?')} test questions"
            + (f", validation {val:.2f}%" if val is not None else "")
        )
        print(("\n" if self.stream.isatty() else "") + line, file=self.stream, flush=True)

    def close(self) -> None:
        if self.enabled:
            if self.stream.isatty():
                print(file=self.stream)
            self._writer.close()
            self._jsonl.close()
            if self._mirror:
                self._mirror.close()
