"""One forward pass of SmolLM2-135M-Instruct at decode-like shapes (8 rows x 1 or 16 tokens, no
cache), rt_jax (stacked and per-layer params) vs transformers, in one process: the floor under a
decode step. Ratios only.

    python benchmarks/forward_step.py
"""

import os
import time

import jax
import jax.numpy as jnp
import torch
import transformers

from rt_jax.models import hf

d = os.path.expanduser("~/.cache/rt_jax/smollm2-135m-instruct")
loaded = hf.from_pretrained(d)
B, C = 8, 128
p = loaded.params
# full forward of B x 1 token vs B x C tokens through apply (no cache): matmul-bound reference, with the
# scanned (stacked) params and in the decoding layout (per-layer arrays, what the CPU decoder uses)
f = jax.jit(lambda p, ids, m: loaded.module.apply({"params": p}, input_ids=ids, attention_mask=m))
for layout, params in (("stacked", p), ("per-layer", loaded.module.decoding_params(p))):
    for T in (1, 16):
        ids = jnp.ones((B, T), jnp.int32)
        m = jnp.ones((B, T), jnp.int32)
        f(params, ids, m).block_until_ready()
        t = time.perf_counter()
        for _ in range(5):
            f(params, ids, m).block_until_ready()
        print(f"rt_jax forward ({layout}) B={B} T={T}: {(time.perf_counter() - t) / 5 * 1000:.0f} ms", flush=True)
model = transformers.AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32).eval()
for T in (1, 16):
    ids = torch.ones((B, T), dtype=torch.long)
    with torch.inference_mode():
        model(ids)
        t = time.perf_counter()
        for _ in range(5):
            model(ids)
    print(f"torch forward B={B} T={T}: {(time.perf_counter() - t) / 5 * 1000:.0f} ms", flush=True)
