"""Side-by-side decoding speed: rt_jax's compiled decoder vs transformers' PyTorch generate.

    python benchmarks/decode.py [--model gpt2|t5|all] [--prompts 16] [--prompt_len 64] [--new 64]
    python benchmarks/decode.py --model smollm2 [--prompts 32] [--sample_prompts 8] [--new 128] [--compare_stacked]

gpt2 / t5: random weights of GPT-2 small and T5-small shape; both sides decode the same prompt
ids with the same settings in this process (greedy and beam 4, EOS disabled). Prints new tokens/s
for each side, their ratio and our XLA compile time (reported by jax.monitoring).

smollm2: the SmolLM2-135M-Instruct checkpoint (scripts/smollm2_instruct.py) on real questions
(coin_flip and GSM8K test questions, half each, as Zero-shot-CoT step-1 prompts, so completion
lengths vary as in evaluation). Greedy, and sampling with D samples per prompt (temperature 0.7),
each with rt_jax continuous batching, rt_jax static batches and transformers generate: new
tokens/s (rt_jax: the second of two identical calls, so tracing and compiling are excluded;
compiles of the first counted by jax.monitoring), the useful fraction (generated
tokens / (rows x decode steps)), greedy identity with transformers and with decoding each prompt
alone, and the distinct compiled decode shapes. The persistent compilation cache is on (as in
every rt_jax command): a second identical run prints "compiles 0". --compare_stacked adds continuous
batching with DecodeConfig.layer_layout="stacked" (the scanned layers) beside the CPU default (per-layer).
Ratios only: absolute times on shared machines are noise.
"""

import argparse
import pathlib
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


# ../shared/data beside the repository, as the tests find it
DATA_DIR = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"

COMPILE_SECONDS = [0.0]
COMPILES = [0]  # programs XLA compiled (a persistent-cache hit is timed as a backend compile too)


def _count_compiles(event: str, seconds: float, **kwargs):
    if "backend_compile" in event:
        COMPILE_SECONDS[0] += seconds
        COMPILES[0] += 1


def _count_cache_hits(event: str, **kwargs):
    if event == "/jax/compilation_cache/cache_hits":
        COMPILES[0] -= 1


jax.monitoring.register_event_duration_secs_listener(_count_compiles)
jax.monitoring.register_event_listener(_count_cache_hits)


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


def real_prompts(tokenizer, count: int, data_dir: str) -> list[list[int]]:
    """Zero-shot-CoT step-1 prompts of the first coin_flip and GSM8K test questions (half each)."""
    from rt_jax import formats, tasks

    prompts = []
    for task, n in (("coin_flip", count - count // 2), ("gsm8k", count // 2)):
        dataset, split = tasks.load_dataset(task, data_dir), tasks.load_split(task, data_dir)
        for i in split.test[:n]:
            prompts.append(list(tokenizer.encode(formats.zs_cot_reasoning_prompt(dataset[i].question))))
    return prompts


def hf_completions(model, prompts, new, eos, pad, batch, samples=1, seed=0):
    """transformers generate in batches of `batch` prompts (left-padded): per row its new tokens
    up to and including EOS, and the rows x steps it ran."""
    completions, row_steps = [], 0
    torch.manual_seed(seed)
    for start in range(0, len(prompts), batch):
        group = prompts[start : start + batch]
        width = max(map(len, group))
        ids = torch.tensor([[pad] * (width - len(p)) + p for p in group])
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in group])
        sampling = dict(do_sample=True, temperature=0.7, top_k=0, top_p=1.0) if samples > 1 else dict(do_sample=False)
        with torch.inference_mode():
            out = model.generate(
                ids,
                attention_mask=mask,
                max_new_tokens=new,
                num_return_sequences=samples,
                eos_token_id=eos,
                pad_token_id=pad,
                **sampling,
            )
        generated = out[:, width:].tolist()
        row_steps += len(generated) * len(generated[0])
        for row in generated:
            completions.append(tuple(row[: row.index(eos) + 1] if eos in row else row))
    return completions, row_steps


def run_checkpoint(
    directory, num_prompts, sample_prompts, samples, new, slots, reference=True, strategies=None, compare_stacked=False
):
    from rt_jax import cli

    cache = cli.enable_compilation_cache()
    loaded = models.from_pretrained(directory)
    hf = transformers.AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32).eval()
    tok = loaded.tokenizer
    eos, pad = tok.eos_token_id, tok.pad_token_id
    prompts = real_prompts(tok, num_prompts, str(DATA_DIR))
    lengths = sorted(map(len, prompts))
    print(
        f"SmolLM2-135M-Instruct, {len(prompts)} prompts ({lengths[0]}-{lengths[-1]} tokens), "
        f"{new} new tokens, {slots} rows at a time; compilation cache {cache}",
        flush=True,
    )
    results = {}
    for strategy, n_prompts, d in (("greedy", num_prompts, 1), ("sample", sample_prompts, samples)):
        if strategies and strategy not in strategies:
            continue
        group = prompts[:n_prompts]
        base = dict(
            strategy=strategy,
            max_new_tokens=new,
            temperature=0.7 if d > 1 else 1.0,
            num_return_sequences=d,
            batch_size=max(1, slots // d),
            slots=slots,
        )
        rates = {}
        runs = [("continuous", "auto"), ("static", "auto")] + [("continuous", "stacked")] * compare_stacked
        for batching, layout in runs:
            decoder = Decoder(loaded, DecodeConfig(**base, batching=batching, layer_layout=layout))
            name = batching if layout == "auto" else f"{batching} ({layout} layers)"
            # the first call traces and compiles every shape (counted here), the second is timed
            COMPILE_SECONDS[0], COMPILES[0] = 0.0, 0
            decoder.decode_ids(group)
            slot_steps = lambda: decoder.slot_loop.slot_steps if batching == "continuous" else decoder.static_slot_steps  # noqa: E731
            before = slot_steps()
            start = time.perf_counter()
            outs = decoder.decode_ids(group)
            wall = time.perf_counter() - start
            tokens = [o[0] for per_prompt in outs for o in per_prompt]
            generated = sum(map(len, tokens))
            row_steps = slot_steps() - before
            shapes = decoder.slot_loop.compiled_shapes() if batching == "continuous" else decoder._run._cache_size()
            rates[name] = generated / wall
            results[(strategy, name)] = tokens
            print(
                f"{strategy:6s} D={d} rt_jax {name:10s} {rates[name]:8.1f} tok/s  useful "
                f"{100 * generated / row_steps:5.1f}%  ({generated} tokens, {row_steps} row-steps)  "
                f"compiles {COMPILES[0]} ({COMPILE_SECONDS[0]:.1f} s), {shapes} compiled decode shapes",
                flush=True,
            )
        if compare_stacked:
            print(
                f"{strategy:6s} D={d} per-layer / stacked layers (continuous): "
                f"{rates['continuous'] / rates['continuous (stacked layers)']:.2f}x, same tokens: "
                f"{results[(strategy, 'continuous')] == results[(strategy, 'continuous (stacked layers)')]}",
                flush=True,
            )
        if not reference:
            continue
        start = time.perf_counter()
        ref, ref_steps = hf_completions(hf, group, new, eos, pad, max(1, slots // d), d)
        ref_rate = sum(map(len, ref)) / (time.perf_counter() - start)
        print(
            f"{strategy:6s} D={d} transformers          {ref_rate:8.1f} tok/s  useful "
            f"{100 * sum(map(len, ref)) / ref_steps:5.1f}%   ratio continuous / transformers "
            f"{rates['continuous'] / ref_rate:5.2f}x, static / transformers {rates['static'] / ref_rate:5.2f}x",
            flush=True,
        )
        if strategy == "greedy":
            ours = results[("greedy", "continuous")]
            same_hf = sum(a == b for a, b in zip(ours, ref))
            alone = Decoder(loaded, DecodeConfig(**dict(base, batch_size=1), batching="static")).decode_ids(group)
            same_alone = sum(a == o[0][0] for a, o in zip(ours, alone))
            same_static = sum(a == b for a, b in zip(ours, results[("greedy", "static")]))
            print(
                f"greedy identical: to transformers {100 * same_hf / len(ours):.1f}%  to each prompt alone "
                f"{100 * same_alone / len(ours):.1f}%  to static batches {100 * same_static / len(ours):.1f}% "
                f"({len(ours)} prompts)",
                flush=True,
            )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["gpt2", "t5", "all", "smollm2"], default="all")
    parser.add_argument("--checkpoint", default="~/.cache/rt_jax/smollm2-135m-instruct", help="smollm2's directory")
    parser.add_argument("--sample_prompts", type=int, default=8, help="smollm2: prompts sampled D times")
    parser.add_argument("--samples", type=int, default=8, help="smollm2: D")
    parser.add_argument("--slots", type=int, default=16, help="smollm2: rows decoded together")
    parser.add_argument("--strategies", default="", help="smollm2: greedy,sample (default both)")
    parser.add_argument("--no_reference", action="store_true", help="smollm2: rt_jax only (no transformers)")
    parser.add_argument(
        "--compare_stacked", action="store_true", help="smollm2: also continuous with layer_layout=stacked (the scan)"
    )
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--prompt_len", type=int, default=64)
    parser.add_argument("--new", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    print(
        f"jax {jax.__version__} on {jax.devices()[0].platform}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads)"
    )
    if args.model == "smollm2":
        import os

        directory = os.path.expanduser(args.checkpoint)
        run_checkpoint(
            directory,
            args.prompts,
            args.sample_prompts,
            args.samples,
            args.new,
            args.slots,
            reference=not args.no_reference,
            strategies=args.strategies.split(",") if args.strategies else None,
            compare_stacked=args.compare_stacked,
        )
        return
    for kind in ["gpt2", "t5"] if args.model == "all" else [args.model]:
        run(kind, args.prompts, args.prompt_len, args.new, args.repeats)


if __name__ == "__main__":
    main()
