"""Continuous vs static batches of rt_jax's decoder, side by side in one process, on SmolLM2-135M-Instruct.

    python benchmarks/continuous_batching.py ends    [--questions 16] [--new 128] [--slots 8]
    python benchmarks/continuous_batching.py limit   [--new 64] [--slots 8]

ends: real test questions (coin_flip and GSM8K, --questions of each) as chat-templated user turns,
greedy with the model's own EOS, so completions end at different steps: tokens/s, the useful
fraction (generated tokens / (rows x decode steps)) and whether both give the same completions.
limit: random-token prompts with EOS off, every row runs to --new tokens (the case where continuous
batching can only cost), the two decoders alternated twice. The two decoders differ only in
DecodeConfig.batching. Ratios only: absolute times on shared machines are noise.
"""

import argparse
import os
import pathlib
import time

import numpy as np

from rt_jax.decoding import DecodeConfig, Decoder
from rt_jax.models import chat, hf
from rt_jax.tasks import load_dataset, load_split

MODEL = pathlib.Path("~/.cache/rt_jax/smollm2-135m-instruct").expanduser()
DATA_DIR = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"


def question_prompts(tokenizer, data_dir, per_task: int) -> list[list[int]]:
    prompts = []
    for task in ("coin_flip", "gsm8k"):
        dataset = load_dataset(task, data_dir)
        for i in sorted(load_split(task, data_dir).test)[:per_task]:
            prompts.append(chat.chat_prompt_ids(tokenizer, dataset[i].question + "\nAnswer briefly."))
    return prompts


def run(decoder, prompts):
    """(seconds, generated tokens, rows x decode steps, completions) of one decode_ids call."""
    if decoder.slot_loop is not None:
        decoder.slot_loop.slot_steps = 0
    decoder.static_slot_steps = 0
    start = time.perf_counter()
    out = decoder.decode_ids(prompts)
    seconds = time.perf_counter() - start
    steps = decoder.slot_loop.slot_steps if decoder.slot_loop is not None else decoder.static_slot_steps
    tokens = [rows[0][0] for rows in out]
    return seconds, sum(map(len, tokens)), steps, tokens


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["ends", "limit"])
    parser.add_argument("--model", default=str(MODEL))
    parser.add_argument("--data_dir", default=str(DATA_DIR))
    parser.add_argument("--questions", type=int, default=16, help="ends: test questions per task")
    parser.add_argument("--new", type=int, default=128)
    parser.add_argument("--slots", type=int, default=8)
    args = parser.parse_args()
    loaded = hf.from_pretrained(args.model)
    if args.mode == "ends":
        prompts, eos = question_prompts(loaded.tokenizer, args.data_dir, args.questions), None
    else:
        rng = np.random.default_rng(0)
        prompts, eos = [rng.integers(2, 40000, size=int(rng.integers(40, 78))).tolist() for _ in range(8)], -1
    decoders = {
        b: Decoder(
            loaded,
            DecodeConfig(
                strategy="greedy", max_new_tokens=args.new, batch_size=args.slots, eos_token_id=eos, batching=b
            ),
        )
        for b in ("static", "continuous")
    }
    for decoder in decoders.values():
        decoder.decode_ids(prompts[: args.slots])  # compile the common shapes outside the timing
    completions = {}
    for _ in range(1 if args.mode == "ends" else 2):
        for name, decoder in decoders.items():
            seconds, tokens, steps, completions[name] = run(decoder, prompts)
            print(
                f"{name}: {tokens / seconds:.1f} tok/s, useful {100 * tokens / steps:.1f}% "
                f"({tokens} tokens / {steps} row-steps), {len(prompts)} prompts, load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    same = sum(a == b for a, b in zip(completions["static"], completions["continuous"]))
    print(f"identical completions: {same} of {len(prompts)}")


if __name__ == "__main__":
    main()
