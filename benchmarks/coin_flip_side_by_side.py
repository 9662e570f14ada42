"""A real Fine-tune-CoT run, side by side: rt_jax vs transformers + torch on coin_flip.

    python benchmarks/coin_flip_side_by_side.py --out=runs/coin_flip_sbs \\
        [--model_path=~/.cache/rt_jax/smollm2-135m-instruct] [--epochs=2] [--max_new_tokens=0]

SmolLM2-135M-Instruct (scripts/smollm2_instruct.py caches it), the real text-davinci-002
rationales of Kojima et al.'s coin_flip log (imported with `python -m rt_jax.teacher
import_kojima`; 320 correct training rationales), the paper's settings: AdamW 3e-4 (weight decay
0.01, torch's default), batch 8 examples, greedy decoding, all 150 test questions after each
epoch. Phases (--phases, in this order):
1. tps: training tokens/s of both on the same real ft_cot batches (rt_jax's padded plan, batch
   8), each side in its own process, in alternating rounds so both see the same machine load;
   the median of the per-round ratios. Tokens are non-padding tokens.
2. rt_jax: rt_jax's own commands, `python -m rt_jax.evaluate` (zs) and `python -m rt_jax.train`
   (ft, ft_cot) with --config=paper:coin_flip,<method>,smollm2-135m and config.model_path;
   accuracy per epoch and wall time from results.json, tokens/s from metrics.jsonl.
3. torch: the same recipe through the original's code path: AutoModelForCausalLM, torch AdamW,
   the same formatted and tokenized examples in the same batches and order (rt_jax's
   BatchIterator, padded, seed 0), loss = mean cross-entropy over target tokens, then
   `model.generate` greedy on the same prompts, scored by rt_jax.tasks.score.
Both use train.packing=False: the paper's batch is 8 examples, so both take the same steps.
ft_cot's max_new_tokens (default: the longest training target in tokens + 16) is printed and
recorded; zs and ft decode the packaged 16 answer tokens (rt_jax/configs/methods.py).
Every finished piece is written to <out>/results.json at once; re-running skips the pieces
there. Reduced protocol for a busy machine: --max_steps=S (the first S steps of epoch 1, then
one evaluation; rt_jax through `rt_jax.evaluate --checkpoint`), --max_test=N (the first N test
questions), --methods, --tps_steps/--tps_rounds. Not a test: absolute times on a shared
machine are noise; read the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))  # benchmarks/train.py's runners

TASK, STUDENT = "coin_flip", "smollm2-135m"
METHODS = ("zs", "ft", "ft_cot")
COT_METHODS = ("ft_cot",)  # decode a rationale: --max_new_tokens; zs and ft keep the packaged 16 answer tokens
DEFAULT_MODEL = pathlib.Path("~/.cache/rt_jax/smollm2-135m-instruct").expanduser()


def run_config(args, method: str):
    """The rt_jax run config of `method`, exactly as the commands below build it."""
    from rt_jax.configs import paper

    c = paper.get_config(f"{TASK},{method},{STUDENT}")
    c.model_path, c.data_dir, c.teacher_cache_dir = str(args.model_path), str(args.data_dir), str(args.cache_dir)
    c.train.num_epochs, c.train.packing = args.epochs, False
    if method in COT_METHODS:
        c.eval.max_new_tokens = args.max_new_tokens
    return c


def rt_jax_commands(args, method: str, workdir: pathlib.Path) -> list[list[str]]:
    """The rt_jax commands of `method`'s run; with --max_steps (the reduced protocol), training
    stops there with a checkpoint and `rt_jax.evaluate --checkpoint` scores it."""
    config = [
        f"--config=paper:{TASK},{method},{STUDENT}",
        f"--config.model_path={args.model_path}",
        f"--config.data_dir={args.data_dir}",
    ]
    if method in COT_METHODS:
        config.append(f"--config.eval.max_new_tokens={args.max_new_tokens}")
    evaluate = [sys.executable, "-m", "rt_jax.evaluate", *config]
    if args.max_test:
        evaluate.append(f"--max_test_examples={args.max_test}")
    if method == "zs":
        return [[*evaluate, f"--workdir={workdir}"]]
    train = [
        sys.executable,
        "-m",
        "rt_jax.train",
        *config,
        f"--config.teacher_cache_dir={args.cache_dir}",
        f"--config.train.num_epochs={args.epochs}",
        "--config.train.packing=False",
        f"--workdir={workdir}",
    ]
    if not args.max_steps:
        return [train]
    steps = [f"--config.train.max_steps={args.max_steps}", f"--config.train.checkpoint_every_steps={args.max_steps}"]
    checkpoint = [f"--checkpoint={workdir}", "--checkpoint_step=latest", f"--workdir={workdir}/eval"]
    return [train + steps, evaluate + checkpoint]


# ------------------------------------------------------------------ data
def import_teacher(args) -> int:
    """The teacher cache (the real command), and the number of correct training rationales."""
    from rt_jax.teacher import RationaleStore, train_rationales

    if not (args.cache_dir / "text-davinci-002" / "zs_cot" / f"{TASK}.jsonl").is_file():
        cmd = [sys.executable, "-m", "rt_jax.teacher", "import_kojima", f"--data_dir={args.data_dir}"]
        subprocess.run([*cmd, f"--cache_dir={args.cache_dir}", f"--tasks={TASK}"], check=True, env=_env())
    return len(train_rationales(RationaleStore(args.cache_dir), TASK, args.data_dir))


def training_data(args, method: str, tokenizer):
    """rt_jax's training batches of `method` (the BatchIterator the train command builds)."""
    from rt_jax.data.pipeline import build_training_data
    from rt_jax.models import llama

    return build_training_data(run_config(args, method), tokenizer, llama.FAMILY)


def target_lengths(args, tokenizer) -> list[int]:
    data = training_data(args, "ft_cot", tokenizer)
    return sorted(len(e.target_ids) for e in data.iterator.examples)


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


# ------------------------------------------------------------------ torch: the original's code path
def torch_batch(batch):
    import torch

    return {
        "input_ids": torch.tensor(batch["input_ids"], dtype=torch.long),
        "attention_mask": torch.tensor(batch["segment_ids"] > 0, dtype=torch.long),
        "targets": torch.tensor(batch["targets"], dtype=torch.long),
        "loss_mask": torch.tensor(batch["loss_mask"], dtype=torch.float32),
    }


class TorchStudent:
    """AutoModelForCausalLM + torch.optim.AdamW (the paper's settings), trained on rt_jax's batches."""

    def __init__(self, args, seed: int = 0):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        torch.manual_seed(seed)
        self.model = AutoModelForCausalLM.from_pretrained(args.model_path, dtype=torch.float32)
        self.tokenizer = AutoTokenizer.from_pretrained(args.model_path)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=3e-4, weight_decay=0.01)

    def step(self, batch) -> float:
        import torch

        self.model.train()
        self.opt.zero_grad(set_to_none=True)
        logits = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        ce = torch.nn.functional.cross_entropy(logits.flatten(0, 1), batch["targets"].flatten(), reduction="none")
        mask = batch["loss_mask"].flatten()
        loss = (ce * mask).sum() / mask.sum()  # mean over target tokens, as labels=-100 gives
        loss.backward()
        self.opt.step()
        return loss.item()

    def generate(self, prompts: list[str], max_new_tokens: int, batch_size: int = 32) -> list[str]:
        import torch

        self.model.eval()
        tok = self.tokenizer
        tok.padding_side = "left"
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        texts = []
        with torch.no_grad():
            for i in range(0, len(prompts), batch_size):
                enc = tok(prompts[i : i + batch_size], return_tensors="pt", padding=True)
                out = self.model.generate(
                    **enc,
                    do_sample=False,
                    num_beams=1,
                    max_new_tokens=max_new_tokens,
                    pad_token_id=tok.pad_token_id,
                    eos_token_id=tok.eos_token_id,
                )
                new = out[:, enc["input_ids"].shape[1] :]
                texts += tok.batch_decode(new, skip_special_tokens=True)
        return texts


def torch_accuracy(args, student: TorchStudent, method: str, epoch: int) -> float:
    """Greedy accuracy on the test split with rt_jax's prompts and scorer."""
    from types import SimpleNamespace

    from rt_jax.evaluation import held_out_examples, prompts_for
    from rt_jax.tasks import score

    config = run_config(args, method)
    examples = held_out_examples(config, args.max_test)
    prompts, prefix = prompts_for(method, TASK, examples, SimpleNamespace(is_encoder_decoder=False), args.data_dir)
    texts = student.generate(prompts, config.eval.max_new_tokens)
    correct = [score(TASK, t, ex.answer, answer_prefix=prefix).correct for t, ex in zip(texts, examples)]
    with open(args.out / "torch" / f"{method}_predictions.jsonl", "a") as f:  # to read next to rt_jax's
        for ex, prompt, text, ok in zip(examples, prompts, texts, correct):
            f.write(
                json.dumps(
                    {
                        "epoch": epoch,
                        "sample_index": int(ex.sample_index),
                        "prompt": prompt,
                        "completion": text,
                        "correct": bool(ok),
                    }
                )
                + "\n"
            )
    return 100.0 * sum(correct) / len(correct)


def torch_run(args, method: str) -> dict:
    """The reference run of `method`: accuracy after each epoch, training tokens/s and wall time."""
    from rt_jax.train import metrics

    start = time.perf_counter()
    (args.out / "torch").mkdir(exist_ok=True)
    student = TorchStudent(args)
    out = {"epochs": [], "train_s": 0.0, "useful_tokens": 0}
    if method == "zs":
        out["epochs"].append({"epoch": 0, "accuracy": torch_accuracy(args, student, method, 0)})
    else:
        iterator = training_data(args, method, student.tokenizer).iterator
        step = 0
        for epoch in range(args.epochs):
            t = time.perf_counter()
            for b in iterator.epoch_batches(epoch):
                if args.max_steps and step >= args.max_steps:
                    break
                loss = student.step(torch_batch(b))
                out["useful_tokens"] += metrics.batch_token_counts(b)[0]
                step += 1
            out["train_s"] += time.perf_counter() - t
            name = f"step {step}" if args.max_steps else epoch + 1
            acc = torch_accuracy(args, student, method, name)
            out["epochs"].append({"epoch": name, "accuracy": acc, "last_loss": loss})
            print(f"  torch {method} epoch {name}: accuracy {acc:.2f}%, loss {loss:.4f}", flush=True)
            if args.max_steps:
                break
        out["tokens_per_s"] = out["useful_tokens"] / out["train_s"]
    out["wall_s"] = time.perf_counter() - start
    return out


# ------------------------------------------------------------------ phase 1: tokens/s on the same batches
def _serve(side, args, conn):
    """Child process: one side's trainer, timing the given steps of the same batches per request."""
    from rt_jax import host_memory

    if side == "rt_jax":
        import jax
        from train import RtJaxRunner

        from rt_jax import parallel
        from rt_jax.student import load_student

        host_memory.keep_freed_memory()  # as rt_jax's command-line runs do
        config = run_config(args, "ft_cot")
        mesh = parallel.make_mesh({"data": -1, "fsdp": 1, "tensor": 1}, jax.devices()[:1])
        loaded = load_student(config)
        batches = _tps_batches(args, loaded.tokenizer)
        runner = RtJaxRunner(loaded, config, mesh)
        runner.seconds(batches)  # compiles every shape, warms the heap
        run = lambda: runner.seconds(batches)  # noqa: E731
    else:
        student = TorchStudent(args)
        batches = [torch_batch(b) for b in _tps_batches(args, student.tokenizer)]

        def run():
            t = time.perf_counter()
            for b in batches:
                student.step(b)
            return time.perf_counter() - t

        run()  # warm-up
    conn.send("ready")
    while conn.recv() is not None:
        conn.send(run())


def _tps_batches(args, tokenizer):
    it = training_data(args, "ft_cot", tokenizer).iterator
    return [it.batch(0, s) for s in range(min(args.tps_steps, it.steps_per_epoch))]


def compare_tokens_per_s(args) -> dict:
    from train import start_sides
    from transformers import AutoTokenizer

    from rt_jax.train import metrics

    sides = start_sides(_serve, args)
    batches = _tps_batches(args, AutoTokenizer.from_pretrained(args.model_path))
    tokens = sum(metrics.batch_token_counts(b)[0] for b in batches)
    shapes = sorted({b["input_ids"].shape for b in batches})
    print(f"tokens/s on the same {len(batches)} ft_cot batches ({tokens} tokens, shapes {shapes}):", flush=True)
    rounds = []
    for r in range(args.tps_rounds):
        rate = {}
        for side, (_, conn) in sides.items():
            time.sleep(args.settle_s)
            conn.send(True)
            rate[side] = tokens / conn.recv()
        rounds.append(rate)
        print(
            f"  round {r + 1}: rt_jax {rate['rt_jax']:.1f}, torch {rate['torch']:.1f} tokens/s, "
            f"ratio {rate['rt_jax'] / rate['torch']:.2f}x",
            flush=True,
        )
    for proc, conn in sides.values():
        conn.send(None)
        proc.join()
    out = {
        "steps": len(batches),
        "tokens": tokens,
        "shapes": [list(s) for s in shapes],
        "rounds": rounds,
        "rt_jax_tokens_per_s": statistics.median(r["rt_jax"] for r in rounds),
        "torch_tokens_per_s": statistics.median(r["torch"] for r in rounds),
        "ratio": statistics.median(r["rt_jax"] / r["torch"] for r in rounds),
    }
    print(f"  median ratio rt_jax / torch: {out['ratio']:.2f}x", flush=True)
    return out


# ------------------------------------------------------------------ phase 2: rt_jax's commands
def rt_jax_run(args, method: str) -> dict:
    workdir = args.out / "rt_jax" / method
    commands = rt_jax_commands(args, method, workdir)
    results_dir = workdir / "eval" if args.max_steps and method != "zs" else workdir
    start = time.perf_counter()
    for cmd in commands:
        print("+", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True, env=_env())
    wall_s = time.perf_counter() - start
    results = json.loads((results_dir / "results.json").read_text())
    log = workdir / "metrics.jsonl"
    rates = []
    if method != "zs" and log.is_file():
        key = "train/tokens_per_s"  # rt_jax.train.metrics' name in metrics.jsonl
        rates = [r[key] for r in map(json.loads, log.read_text().splitlines()) if key in r]
    epochs = [{"epoch": e["epoch"], "accuracy": e["accuracy"], "num_test": e["num_test"]} for e in results["epochs"]]
    if args.max_steps and method != "zs":
        epochs = [{**e, "epoch": f"step {args.max_steps}"} for e in epochs]
    out = {"commands": [" ".join(c) for c in commands], "epochs": epochs, "wall_s": wall_s}
    if rates:
        out["tokens_per_s"] = statistics.median(rates)  # logging windows, compiles of new batch shapes included
    return out


def summary(results: dict) -> str:
    lines = ["| method | side | accuracy per epoch (%) | training tokens/s | wall s |", "|---|---|---|---|---|"]
    for method in METHODS:
        for side in ("rt_jax", "torch"):
            r = results.get(side, {}).get(method)
            if r:
                accs = ", ".join(f"{e['epoch']}: {e['accuracy']:.2f}" for e in r["epochs"])
                tps = f"{r['tokens_per_s']:.1f}" if "tokens_per_s" in r else "-"
                lines.append(f"| {method} | {side} | {accs} | {tps} | {r['wall_s']:.0f} |")
    if "tps" in results:
        t = results["tps"]
        lines.append(
            f"\nSame batches, alternating: rt_jax {t['rt_jax_tokens_per_s']:.1f}, torch "
            f"{t['torch_tokens_per_s']:.1f} tokens/s, ratio {t['ratio']:.2f}x (median of {len(t['rounds'])} rounds)"
        )
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=pathlib.Path, required=True)
    ap.add_argument("--model_path", type=pathlib.Path, default=DEFAULT_MODEL)
    ap.add_argument(
        "--data_dir", type=pathlib.Path, default=pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--max_new_tokens", type=int, default=0, help="0: longest training target + 16")
    ap.add_argument("--max_test", type=int, default=0, help="reduced protocol: first N test questions (0: all 150)")
    ap.add_argument(
        "--max_steps", type=int, default=0, help="reduced protocol: train the first N steps of epoch 1 only (0: all)"
    )
    ap.add_argument("--phases", default="tps,rt_jax,torch")
    ap.add_argument("--methods", default="ft_cot,ft,zs", help="in the order they run")
    ap.add_argument("--tps_steps", type=int, default=4)
    ap.add_argument("--tps_rounds", type=int, default=3)
    ap.add_argument("--settle_s", type=float, default=5.0)
    args = ap.parse_args()
    args.out, args.model_path = args.out.resolve(), args.model_path.expanduser().resolve()
    args.out.mkdir(parents=True, exist_ok=True)
    args.cache_dir = args.out / "teacher_cache"
    from transformers import AutoTokenizer

    results_path = args.out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}

    def save():
        results_path.write_text(json.dumps(results, indent=1))
        (args.out / "summary.md").write_text(summary(results) + "\n")

    results["train_rationales"] = import_teacher(args)
    lengths = target_lengths(args, AutoTokenizer.from_pretrained(args.model_path))
    if not args.max_new_tokens:
        args.max_new_tokens = lengths[-1] + 16
    results["target_tokens"] = {"min": lengths[0], "median": lengths[len(lengths) // 2], "max": lengths[-1]}
    results["max_new_tokens"] = args.max_new_tokens
    results["protocol"] = {
        "command": " ".join([sys.executable, *sys.argv]),
        **{k: getattr(args, k) for k in ("epochs", "max_steps", "max_test", "tps_steps", "tps_rounds")},
    }
    print(
        f"{results['train_rationales']} correct training rationales; ft_cot target tokens {results['target_tokens']}; "
        f"max_new_tokens {args.max_new_tokens}",
        flush=True,
    )
    save()
    phases, methods = args.phases.split(","), args.methods.split(",")
    if "tps" in phases and "tps" not in results:
        results["tps"] = compare_tokens_per_s(args)
        save()
    for method in methods:
        for side in ("rt_jax", "torch"):
            if side not in phases or method in results.get(side, {}):
                continue
            print(f"{side} {method}:", flush=True)
            r = rt_jax_run(args, method) if side == "rt_jax" else torch_run(args, method)
            results.setdefault(side, {})[method] = r
            print(f"  {side} {method}: {r['epochs']} ({r['wall_s']:.0f} s)", flush=True)
            save()
    print(summary(results))


if __name__ == "__main__":
    main()
