"""Compile time against depth for the scanned Llama-family decoder layers.

    python benchmarks/compile_depth.py [--layers 30 60] [--hidden 64]

For each depth: seconds to lower and compile the jitted train step (forward + backward + AdamW,
batch 4 x 64 tokens) and greedy decoding (prefill + while loop over 16 new tokens, batch 4: first
call minus second; in both DecodeConfig.layer_layouts), on a small-width SmolLM2-shaped config. With
nn.scan over stacked layers the train step and stacked decoding stay flat in depth; per-layer decoding
(the CPU default) grows with it. Read the ratio of the deepest to the shallowest row. Compilation caches are off so each
row compiles from scratch (after one unreported 1-layer warm-up). Not a test: absolute times on
a shared machine are noise.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import jax
import jax.numpy as jnp

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rt_jax import models  # noqa: E402
from rt_jax.configs.base import get_config  # noqa: E402
from rt_jax.decoding import DecodeConfig, Decoder  # noqa: E402
from rt_jax.train import optim  # noqa: E402
from rt_jax.train import state as state_lib  # noqa: E402
from rt_jax.train import step as step_lib  # noqa: E402

LAYOUTS = ("stacked", "per_layer")  # DecodeConfig.layer_layout


def small_config(layers: int, hidden: int):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=512,
        hidden_size=hidden,
        intermediate_size=hidden * 8 // 3,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=True,
    )


def compile_seconds(fn, *args) -> float:
    start = time.perf_counter()
    fn.lower(*args).compile()
    return time.perf_counter() - start


def train_step_compile(loaded) -> float:
    optimizer = optim.make_optimizer(get_config().train, 100)
    state = jax.eval_shape(lambda p: state_lib.create_state(p, optimizer), loaded.params)
    step = jax.jit(step_lib.make_train_step(loaded.module, False, optimizer))
    batch = {k: jax.ShapeDtypeStruct((4, 64), jnp.int32) for k in step_lib.DECODER_KEYS}
    return compile_seconds(step, state, batch, jax.ShapeDtypeStruct((2,), jnp.uint32))


def decode_compile(loaded, layer_layout: str) -> float:
    """First greedy decode_ids call (compile + run) minus the second (run only)."""
    config = DecodeConfig(max_new_tokens=16, eos_token_id=-1, batch_size=4, layer_layout=layer_layout)
    decoder = Decoder(loaded, config)
    prompts = [list(range(2, 34))] * 4
    times = []
    for _ in range(2):
        start = time.perf_counter()
        decoder.decode_ids(prompts)
        times.append(time.perf_counter() - start)
    return times[0] - times[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, nargs="+", default=[30, 60])
    parser.add_argument("--hidden", type=int, default=64)
    args = parser.parse_args()
    jax.config.update("jax_enable_compilation_cache", False)
    warm = models.from_config(small_config(1, args.hidden))  # one-time XLA start-up, not reported
    train_step_compile(warm), decode_compile(warm, "stacked"), decode_compile(warm, "per_layer")
    rows = []
    for layers in args.layers:
        loaded = models.from_config(small_config(layers, args.hidden))
        rows.append((layers, train_step_compile(loaded), *(decode_compile(loaded, x) for x in LAYOUTS)))
        print(
            f"{layers:>4} layers: train step {rows[-1][1]:6.2f} s, greedy decoding {rows[-1][2]:6.2f} s "
            f"(stacked layers), {rows[-1][3]:6.2f} s (per-layer, the CPU default)",
            flush=True,
        )
    first, last = rows[0], rows[-1]
    print(
        f"ratio {last[0]}/{first[0]} layers: train step {last[1] / first[1]:.2f}x, decoding stacked "
        f"{last[2] / first[2]:.2f}x, per-layer {last[3] / first[3]:.2f}x"
    )


if __name__ == "__main__":
    main()
