"""Side-by-side decoding speed: rt_jax's compiled decoder vs transformers' PyTorch generate.

    python benchmarks/decode.py [--model gpt2|t5|all] [--prompts 16] [--prompt_len 64] [--new 64]

Random weights of GPT-2 small and T5-small shape; both sides decode the same prompt ids with
the same settings in this process. Prints new tokens/s for each side, their ratio and our
XLA compile time (reported by jax.monitoring). Ratios only: absolute times on shared machines are noise.
"""

import argparse
import time

import jax
import numpy as np
import torch
import transformers

from rt_jax import models
from rt_jax.decoding import DecodeConfig, Decoder


def hf_model(kind: str):
    if kind == "gpt2":
        config = transformers.GPT2Config()  # gpt2 (124M) shape
        return transformers.GPT2LMHeadModel(config).eval()
    config = transformers.T5Config(decoder_start_token_id=0)  # t5-small shape, as the t5-small checkpoint
    return transformers.T5ForConditionalGeneration(config).eval()


def hf_generate(model, prompts, kind, new, beams):
    ids = torch.tensor(np.asarray(prompts))
    kwargs = dict(
        max_new_tokens=new,
        min_new_tokens=new,
        num_beams=beams,
        do_sample=False,
        early_stopping=False,
        length_penalty=1.0,
        num_return_sequences=1,
        attention_mask=torch.ones_like(ids),
        pad_token_id=0,
    )
    with torch.inference_mode():
        out = model.generate(ids, **kwargs)
    return out.shape[0] * (out.shape[1] - (1 if kind == "t5" else ids.shape[1]))


COMPILE_SECONDS = [0.0]


def _count_compiles(event: str, seconds: float, **kwargs):
    if "backend_compile" in event:
        COMPILE_SECONDS[0] += seconds


jax.monitoring.register_event_duration_secs_listener(_count_compiles)


def timed(fn, repeats=1):
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def run(kind: str, num_prompts: int, prompt_len: int, new: int, repeats: int):
    torch.manual_seed(0)
    model = hf_model(kind)
    loaded = models.from_config(model.config, seed=0)
    rng = np.random.default_rng(0)
    prompts = rng.integers(5, 1000, size=(num_prompts, prompt_len)).tolist()
    for beams in (1, 4):
        strategy = "greedy" if beams == 1 else "beam"
        # eos_token_id=-1: never stop early, so both sides generate exactly `new` tokens
        config = DecodeConfig(
            strategy=strategy,
            num_beams=beams,
            max_new_tokens=new,
            batch_size=num_prompts,
            eos_token_id=-1,
            min_prompt_bucket=prompt_len,
        )
        decoder = Decoder(loaded, config)
        COMPILE_SECONDS[0] = 0.0
        timed(lambda: decoder.decode_ids(prompts))  # compiles
        compile_s = COMPILE_SECONDS[0]
        ours_s, outs = timed(lambda: decoder.decode_ids(prompts), repeats)
        ours_tokens = sum(len(o[0][0]) for o in outs)
        ref_s, ref_tokens = timed(lambda: hf_generate(model, prompts, kind, new, beams), repeats)
        ours_rate, ref_rate = ours_tokens / ours_s, ref_tokens / ref_s
        print(
            f"{kind:5s} {strategy:6s} beams={beams} rt_jax {ours_rate:8.1f} tok/s  "
            f"transformers {ref_rate:8.1f} tok/s  ratio {ours_rate / ref_rate:5.2f}x  "
            f"compile {compile_s:5.1f} s",
            flush=True,
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["gpt2", "t5", "all"], default="all")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--prompt_len", type=int, default=64)
    parser.add_argument("--new", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    print(
        f"jax {jax.__version__} on {jax.devices()[0].platform}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads)"
    )
    for kind in ["gpt2", "t5"] if args.model == "all" else [args.model]:
        run(kind, args.prompts, args.prompt_len, args.new, args.repeats)


if __name__ == "__main__":
    main()
