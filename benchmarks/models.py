"""Forward-pass speed of rt_jax's students against transformers' PyTorch models, side by side.

Prints, per model, the time ratio torch / rt_jax (above 1: rt_jax is faster) and rt_jax's share
of this machine's matmul peak (measured in the same process with one large jnp.dot).

    python benchmarks/models.py --students gpt2,t5-small --batch 8 --length 128
"""

import time

import jax
import jax.numpy as jnp
import numpy as np
import torch
from absl import flags
from transformers import AutoModelForCausalLM, AutoModelForSeq2SeqLM

from rt_jax import models
from rt_jax.cli import run_main

STUDENTS = flags.DEFINE_string("students", "gpt2,t5-small", "comma-separated paper students")
BATCH = flags.DEFINE_integer("batch", 8, "batch size")
LENGTH = flags.DEFINE_integer("length", 128, "tokens per row (encoder and decoder alike for T5)")
REPEATS = flags.DEFINE_integer("repeats", 5, "timed runs (best one counts)")


def best_time(fn, repeats: int) -> float:
    fn()  # warm up / compile
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_peak_flops(repeats: int) -> float:
    a = jnp.ones((2048, 2048), jnp.float32)
    dot = jax.jit(lambda x: x @ x)
    return 2 * 2048**3 / best_time(lambda: dot(a).block_until_ready(), repeats)


def main(argv):
    del argv
    peak = matmul_peak_flops(REPEATS.value)
    print(f"matmul peak on this machine: {peak / 1e9:.1f} GFLOP/s")
    rng = np.random.default_rng(0)
    for name in STUDENTS.value.split(","):
        config = models.student_config(name)
        loaded = models.from_config(config)
        n_params = models.param_count(loaded.module)
        b, t = BATCH.value, LENGTH.value
        ids = rng.integers(0, config.vocab_size, (b, t)).astype(np.int32)
        torch_ids = torch.from_numpy(ids.astype(np.int64))
        if loaded.is_encoder_decoder:
            ref = AutoModelForSeq2SeqLM.from_config(config).eval()
            ours = jax.jit(lambda p, x: loaded.module.apply({"params": p}, x, None, x))
            run_ref = lambda: ref(input_ids=torch_ids, decoder_input_ids=torch_ids)
            tokens = 2 * b * t
        else:
            ref = AutoModelForCausalLM.from_config(config).eval()
            ours = jax.jit(lambda p, x: loaded.module.apply({"params": p}, x))
            run_ref = lambda: ref(input_ids=torch_ids)
            tokens = b * t
        with torch.no_grad():
            t_ref = best_time(run_ref, REPEATS.value)
        t_ours = best_time(lambda: ours(loaded.params, ids).block_until_ready(), REPEATS.value)
        flops = 2 * n_params * tokens  # matmul FLOPs, attention scores left out
        print(
            f"{name}: torch {t_ref * 1e3:.0f} ms, rt_jax {t_ours * 1e3:.0f} ms, ratio torch/rt_jax "
            f"{t_ref / t_ours:.2f}; rt_jax at {100 * flops / t_ours / peak:.0f}% of matmul peak"
        )


if __name__ == "__main__":
    run_main(main)
