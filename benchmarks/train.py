"""Training throughput: rt_jax vs transformers' PyTorch GPT-2 + torch AdamW, side by side.

    python benchmarks/train.py [--steps=2] [--rounds=3] [--batch=8] [--seq=256] [--real_steps=2]

1. GPT-2 small shape (124M, random init, float32), batch 8 x 256 tokens, AdamW: tokens/s of
   rt_jax's jitted train step and of the reference, each in its own process, timed in
   alternating rounds (rt_jax steps, then torch steps, repeated) so that both see the same
   machine load; the median of the per-round ratios; rt_jax's achieved FLOP/s against this machine's matmul
   peak measured in the same process, and the share of the step the parameter matmuls alone need at that peak.
2. Real Fine-tune-CoT batches (multiarith, Kojima's text-davinci-002 rationales imported into a
   temporary teacher cache, `ft_cot` format; no GPT-2 vocabulary is on disk, so token counts come
   from the byte-level BPE stand-in of benchmarks/padding.py, fed to the same GPT-2 small):
   useful (non-padding) tokens/s padded like the reference (every example to the dataset's
   longest), padded per batch (rt_jax's padded mode) and packed.
Not a test: absolute times on a shared machine are noise; read the ratios.
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import tempfile
import time

import jax
import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from rt_jax import host_memory, models, parallel  # noqa: E402
from rt_jax.configs.base import get_config  # noqa: E402
from rt_jax.train import metrics, optim  # noqa: E402
from rt_jax.train import state as state_lib  # noqa: E402
from rt_jax.train import step as step_lib  # noqa: E402


def rt_jax_trainer(loaded, config, mesh):
    """(state, jitted step) of GPT-2 with the config's optimizer on `mesh`."""
    total = 1000
    opt = optim.make_optimizer(config.train, total)
    abstract = state_lib.abstract_state(loaded.params, opt)
    shardings = state_lib.state_shardings(abstract, models.logical_axes(loaded), mesh, opt)
    st = state_lib.create_state(loaded.params, opt, shardings)
    fn = step_lib.make_train_step(
        loaded.module, False, opt, optim.learning_rate_schedule(config.train, total), mesh=mesh
    )
    return st, step_lib.jit_train_step(fn, shardings, mesh, step_lib.DECODER_KEYS)


class RtJaxRunner:
    """Runs rt_jax train steps on given host batches; compiles each new shape untimed."""

    def __init__(self, loaded, config, mesh):
        self.mesh = mesh
        self.state, self.step = rt_jax_trainer(loaded, config, mesh)
        self.rng = jax.random.PRNGKey(0)
        self.shapes = set()

    def seconds(self, batches) -> float:
        batches = [parallel.global_batch(b, self.mesh) for b in batches]
        for b in batches:
            if b["input_ids"].shape not in self.shapes:
                self.state, _ = self.step(self.state, b, self.rng)
                self.shapes.add(b["input_ids"].shape)
        jax.block_until_ready(self.state)
        t = time.perf_counter()
        for b in batches:
            self.state, m = self.step(self.state, b, self.rng)
        jax.block_until_ready((self.state, m))
        return time.perf_counter() - t


class TorchRunner:
    """transformers' GPT2LMHeadModel + torch.optim.AdamW (lr 3e-4) on one fixed batch."""

    def __init__(self, hf_config, batch, device="cpu"):
        import torch
        from transformers import GPT2LMHeadModel

        torch.manual_seed(0)
        self.model = GPT2LMHeadModel(hf_config).to(device)
        self.model.train()
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=3e-4)
        self.ids = torch.tensor(batch["input_ids"], dtype=torch.long, device=device)
        self.seconds(1)  # warm-up

    def _one(self):
        self.opt.zero_grad(set_to_none=True)
        loss = self.model(input_ids=self.ids, labels=self.ids).loss
        loss.backward()
        self.opt.step()
        return loss

    def seconds(self, steps: int) -> float:
        t = time.perf_counter()
        for _ in range(steps):
            loss = self._one()
        loss.item()  # waits for the device
        return time.perf_counter() - t


def synthetic_batch(batch, seq, vocab, seed=0):
    rng = np.random.RandomState(seed)
    ids = rng.randint(0, vocab, size=(batch, seq + 1)).astype(np.int32)
    return {
        "input_ids": ids[:, :-1],
        "segment_ids": np.ones((batch, seq), np.int32),
        "positions": np.broadcast_to(np.arange(seq, dtype=np.int32), (batch, seq)).copy(),
        "targets": ids[:, 1:],
        "loss_mask": np.ones((batch, seq), np.int32),
    }


def param_matmul_seconds(n_params, tokens, peak):
    """Seconds the 6N FLOPs per token of the parameter matmuls alone need at `peak` FLOP/s."""
    return 6 * n_params * tokens / peak


def _serve(side, args, conn):
    """Child process: builds one side's trainer, then times `steps` steps per request."""
    hf_config = models.student_config("gpt2")
    batch = synthetic_batch(args.batch, args.seq, hf_config.vocab_size)
    if side == "rt_jax":
        host_memory.keep_freed_memory()  # as rt_jax's command-line runs do
        mesh = parallel.make_mesh({"data": -1, "fsdp": 1, "tensor": 1}, jax.devices()[:1])
        runner = RtJaxRunner(models.from_config(hf_config, seed=0), get_config(), mesh)
        runner.seconds([batch])  # compiles
        run = lambda steps: runner.seconds([batch] * steps)
    else:
        run = TorchRunner(hf_config, batch, device=args.torch_device).seconds
    conn.send("ready")
    while (steps := conn.recv()) is not None:
        conn.send(run(steps))


def start_sides(serve, args) -> dict:
    """{side: (process, pipe)} of `serve(side, args, conn)` for rt_jax and torch, each in its own
    process: in one process the idle side's thread pools (torch's OpenMP threads spin after each
    op) would slow the other down. Started one at a time, so the set-ups do not overlap either."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    sides = {}
    for side in ("rt_jax", "torch"):
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=serve, args=(side, args, child), daemon=True)
        proc.start()
        if parent.recv() != "ready":
            raise RuntimeError(f"{side} worker failed to start")
        sides[side] = (proc, parent)
    return sides


def compare_synthetic(args, peak):
    """Each side in its own process (start_sides), taking turns."""
    sides = start_sides(_serve, args)
    hf_config = models.student_config("gpt2")
    n_params = models.param_count(models.from_config(hf_config, seed=0).module)
    tokens = args.batch * args.seq * args.steps
    print(
        f"GPT-2 small ({n_params / 1e6:.1f}M params, f32), batch {args.batch} x {args.seq}, AdamW, "
        f"{args.rounds} alternating rounds of {args.steps} steps:"
    )
    rates = []
    for r in range(args.rounds):
        rate = {}
        for side, (_, conn) in sides.items():
            time.sleep(args.settle_s)
            conn.send(args.steps)
            rate[side] = tokens / conn.recv()
        rates.append((rate["rt_jax"], rate["torch"]))
        print(
            f"  round {r + 1}: rt_jax {rate['rt_jax']:7.1f} tokens/s, torch {rate['torch']:7.1f} tokens/s "
            f"({args.torch_device}), ratio {rate['rt_jax'] / rate['torch']:.2f}x"
        )
    for proc, conn in sides.values():
        conn.send(None)
        proc.join()
    jax_tps = statistics.median(j for j, _ in rates)
    torch_tps = statistics.median(t for _, t in rates)
    ratio = statistics.median(j / t for j, t in rates)
    per_token = metrics.flops_per_token(hf_config, n_params, args.seq)
    step_s = args.batch * args.seq / jax_tps
    floor_s = param_matmul_seconds(n_params, args.batch * args.seq, peak)
    print(f"  median: rt_jax {jax_tps:.1f} tokens/s, torch {torch_tps:.1f} tokens/s, ratio rt_jax / torch {ratio:.2f}x")
    print(
        f"  rt_jax achieved {per_token * jax_tps / 1e9:.1f} GFLOP/s = {100 * per_token * jax_tps / peak:.0f}% "
        f"of the measured matmul peak (torch {100 * per_token * torch_tps / peak:.0f}%)"
    )
    print(
        f"  the parameter matmuls alone at that peak: {floor_s:.2f} s of rt_jax's {step_s:.2f} s step "
        f"(a 2x-torch step would be {args.batch * args.seq / (2 * torch_tps):.2f} s)"
    )


def real_iterators(args, config):
    """(name, BatchIterator) for the reference's padding, rt_jax's padded mode and packing, over
    multiarith ft_cot examples tokenized by the BPE stand-in."""
    from padding import bpe_tokenizer

    from rt_jax.data.batching import BatchIterator
    from rt_jax.data.pairs import build_training_pairs
    from rt_jax.data.tokenize import tokenize_pairs
    from rt_jax.models import gpt2
    from rt_jax.teacher import RationaleStore, import_log

    with tempfile.TemporaryDirectory() as cache:
        import_log(
            RationaleStore(cache),
            pathlib.Path(args.data_dir) / "raw/kojima_zero_shot_cot/log/multiarith_zero_shot_cot.log",
            args.data_dir,
            problems=[],
        )
        pairs = build_training_pairs(
            "multiarith", "ft_cot", data_dir=args.data_dir, is_encoder_decoder=False, teacher_cache_dir=cache
        )
    tok = bpe_tokenizer([p.prompt + p.target for p in pairs], 4096)
    examples = tokenize_pairs(pairs, tok, gpt2.FAMILY, args.real_seq)
    longest = max(e.length(False)[0] for e in examples)
    common = dict(batch_size=args.batch, seed=config.seed, seq_len=args.real_seq, pad_id=tok.pad_token_id)
    return [
        (
            "reference: every example padded to the longest",
            BatchIterator(examples, packing=False, buckets=(longest,), **common),
        ),
        ("rt_jax padded per batch (bucketed)", BatchIterator(examples, packing=False, **common)),
        (f"rt_jax packed into {args.real_seq}-token rows", BatchIterator(examples, packing=True, **common)),
    ]


def compare_real(args, config):
    from rt_jax.data.batching import token_slots

    print(
        f"real multiarith ft_cot batches (BPE stand-in tokens), GPT-2 small, {args.batch} rows per step, "
        f"epoch 0 extrapolated from its first {args.real_steps} steps:"
    )
    # One runner for all plans: a shape two plans share compiles once.
    runner = RtJaxRunner(models.from_config(models.student_config("gpt2"), seed=0), config, MESH)
    results = []
    for name, it in real_iterators(args, config):
        batches = [it.batch(0, s) for s in range(min(args.real_steps, it.steps_per_epoch))]
        runner.seconds(batches)  # warm-up: the first runs of a new shape still grow the host heap
        secs = runner.seconds(batches)
        slots = token_slots(it)
        # Step time is ~linear in token slots: scale the measured seconds per slot to the epoch.
        epoch_s = secs / sum(b["input_ids"].size for b in batches) * slots["slots"]
        results.append(slots["real_tokens"] / epoch_s)
        print(
            f"  {name:48s} {results[-1]:7.1f} useful tokens/s, {100 * slots['padding_fraction']:4.1f}% padding, "
            f"{slots['steps']:3d} steps/epoch, ~{epoch_s:5.0f} s/epoch"
        )
    print(
        f"  useful tokens/s vs the reference's padding: per-batch padded {results[1] / results[0]:.2f}x, "
        f"packed {results[2] / results[0]:.2f}x"
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=2, help="steps per side and round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--settle_s",
        type=float,
        default=5.0,
        help="pause before each side's turn: right after the other side's turn, steps "
        "ran up to ~15%% slower on the 2-core machine (no CPU was used meanwhile)",
    )
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--real_steps", type=int, default=2, help="0 skips the real-batch comparison")
    ap.add_argument("--real_seq", type=int, default=256)
    ap.add_argument("--torch_device", default="cpu", help="cpu, or cuda on a GPU machine")
    ap.add_argument("--data_dir", default=str(REPO.parent / "shared" / "data"))
    args = ap.parse_args()
    host_memory.keep_freed_memory()  # the real-batch comparison runs rt_jax in this process
    global MESH
    MESH = parallel.make_mesh({"data": -1, "fsdp": 1, "tensor": 1}, jax.devices()[:1])
    config = get_config()
    print(f"device: {jax.devices()[0].device_kind}, {jax.device_count()} device(s)")
    peak = metrics.measured_matmul_peak()
    print(f"measured matmul peak (2048^2 f32, jit): {peak / 1e9:.1f} GFLOP/s")
    if args.steps:
        compare_synthetic(args, peak)
    if args.real_steps:
        compare_real(args, config)


MESH = None

if __name__ == "__main__":
    main()
