"""Sampled teacher generation, side by side: rt_jax's local teacher (D samples of a question as D rows
of one decoding call, as `teacher generate --backend=local` draws them) vs transformers'
`generate(num_return_sequences=D, do_sample=True)`, on the same prompts in this process.

    python benchmarks/teacher_local.py [--model DIR] [--prompts 8] [--samples 8] [--new 64]

Model: SmolLM2-135M-Instruct (default: the checkpoint of scripts/smollm2_instruct.py). Prompts: the
reasoning turns of the first coin_flip training questions in the model's chat template. Both sides
sample at temperature 0.7 and generate exactly --new tokens per row (EOS ignored), so both produce
prompts x samples x new tokens; tokens/s counts those, and the prompt of a question once (its
prefill is shared by its D rows, or should be). Each side runs once to warm up (our XLA compile) and
is then timed once. Prints tokens/s of both sides and their ratio: ratios only, absolute times on a
shared machine are noise.
"""

import argparse
import pathlib
import time

import jax
import torch
import transformers

from rt_jax.decoding import DecodeConfig, get_decoder
from rt_jax.models import chat
from rt_jax.tasks import load_dataset, load_split
from rt_jax.teacher.generate import reasoning_input
from rt_jax.teacher.local import load_teacher

DEFAULT_MODEL = pathlib.Path("~/.cache/rt_jax/smollm2-135m-instruct").expanduser()
DATA_DIR = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"


def prompt_ids(tokenizer, data_dir, count: int) -> list[list[int]]:
    dataset = load_dataset("coin_flip", data_dir)
    train = sorted(load_split("coin_flip", data_dir).train)[:count]
    return [chat.conversation_ids(tokenizer, reasoning_input("chat", dataset[i].question)) for i in train]


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def ours(backend, prompts, samples: int, new: int):
    """The decoder `LocalModelBackend.sample` uses, EOS switched off: exactly `new` tokens a row."""
    config = DecodeConfig(
        strategy="sample",
        temperature=0.7,
        num_return_sequences=samples,
        max_new_tokens=new,
        batch_size=len(prompts),
        eos_token_id=-1,
    )
    decoder = get_decoder(backend.loaded, config, backend.mesh, backend.param_shardings)
    key = jax.random.PRNGKey(0)
    timed(lambda: decoder.decode_ids(prompts, key=key))  # compiles
    seconds, outs = timed(lambda: decoder.decode_ids(prompts, key=key))
    return seconds, sum(len(tokens) for rows in outs for tokens, _, _ in rows)


def reference(model_dir, prompts, samples: int, new: int, pad_id: int):
    model = transformers.AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    width = max(map(len, prompts))
    ids = torch.full((len(prompts), width), pad_id)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, p in enumerate(prompts):  # left padding, as for any decoder-only batch
        ids[row, width - len(p) :], mask[row, width - len(p) :] = torch.tensor(p), 1

    def generate():
        torch.manual_seed(0)
        with torch.inference_mode():
            out = model.generate(
                ids,
                attention_mask=mask,
                do_sample=True,
                temperature=0.7,
                top_k=0,
                top_p=1.0,
                num_return_sequences=samples,
                max_new_tokens=new,
                min_new_tokens=new,
                pad_token_id=pad_id,
            )
        return out.shape[0] * (out.shape[1] - width)

    generate()  # warm-up
    return timed(generate)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL))
    parser.add_argument("--data_dir", default=str(DATA_DIR))
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--samples", type=int, default=8)
    parser.add_argument("--new", type=int, default=64)
    args = parser.parse_args()
    print(
        f"jax {jax.__version__} on {jax.devices()[0].platform}, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), {args.prompts} prompts x {args.samples} samples x {args.new} tokens"
    )
    backend = load_teacher(args.model)
    prompts = prompt_ids(backend.loaded.tokenizer, args.data_dir, args.prompts)
    prompt_tokens = sum(map(len, prompts))  # each prompt once: the prefill its samples share
    ours_s, ours_new = ours(backend, prompts, args.samples, args.new)
    ref_s, ref_new = reference(args.model, prompts, args.samples, args.new, backend.loaded.tokenizer.pad_token_id)
    assert ours_new == ref_new == args.prompts * args.samples * args.new, (ours_new, ref_new)
    ours_rate, ref_rate = (ours_new + prompt_tokens) / ours_s, (ref_new + prompt_tokens) / ref_s
    print(f"prompt tokens {prompt_tokens} (counted once), new tokens {ours_new} per side")
    print(f"rt_jax local teacher  {ours_rate:8.1f} tok/s  ({ours_s:.2f} s)")
    print(f"transformers generate {ref_rate:8.1f} tok/s  ({ref_s:.2f} s)")
    print(f"ratio {ours_rate / ref_rate:.2f}x (new tokens alone: {ours_new / ours_s / (ref_new / ref_s):.2f}x)")


if __name__ == "__main__":
    main()
