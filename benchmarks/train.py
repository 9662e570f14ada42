"""Training throughput: rt_jax vs transformers' PyTorch GPT-2 + torch AdamW, side by side.

    python benchmarks/train.py [--steps=3] [--batch=8] [--seq=256] [--real_steps=3]

1. GPT-2 small shape (124M, random init, float32), batch 8 x 256 tokens, AdamW: tokens/s of
   rt_jax's jitted train step and of the reference, their ratio, and rt_jax's achieved FLOP/s
   against this machine's matmul peak measured in the same process.
2. Real Fine-tune-CoT batches (multiarith, Kojima's text-davinci-002 rationales imported into a
   temporary teacher cache, `ft_cot` format, byte tokenizer as no GPT-2 vocabulary is on disk):
   useful (non-padding) tokens/s padded like the reference vs packed.
Not a test: absolute times on a shared machine are noise; read the ratios.
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from configs.base import get_config  # noqa: E402
from rt_jax import models, parallel  # noqa: E402
from rt_jax.train import metrics, optim, state as state_lib, step as step_lib  # noqa: E402


def rt_jax_trainer(loaded, config, mesh):
    total = 1000
    opt = optim.make_optimizer(config.train, total)
    abstract = state_lib.abstract_state(loaded.params, opt)
    shardings = state_lib.state_shardings(abstract, models.logical_axes(loaded), mesh, opt)
    st = state_lib.create_state(loaded.params, opt, shardings)
    fn = step_lib.make_train_step(loaded.module, False, opt, optim.learning_rate_schedule(config.train, total),
                                  mesh=mesh)
    return st, step_lib.jit_train_step(fn, shardings, mesh, step_lib.DECODER_KEYS)


def time_rt_jax(st, step, batches, warmup_batches):
    """Seconds for `batches` after running `warmup_batches` (compiles every shape first)."""
    rng = jax.random.PRNGKey(0)
    mesh_batches = [parallel.global_batch(b, MESH) for b in batches]
    for b in warmup_batches:
        st, m = step(st, parallel.global_batch(b, MESH), rng)
    jax.block_until_ready(st)
    t = time.perf_counter()
    for b in mesh_batches:
        st, m = step(st, b, rng)
    jax.block_until_ready((st, m))
    return time.perf_counter() - t, st


def time_torch(hf_config, batch, steps, warmup=1, device="cpu"):
    import torch
    from transformers import GPT2LMHeadModel
    torch.manual_seed(0)
    model = GPT2LMHeadModel(hf_config).to(device)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4)
    ids = torch.tensor(batch["input_ids"], dtype=torch.long, device=device)
    labels = ids.clone()

    def one():
        opt.zero_grad(set_to_none=True)
        loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        opt.step()
        return loss
    for _ in range(warmup):
        one().item()
    t = time.perf_counter()
    for _ in range(steps):
        loss = one()
    loss.item()  # waits for the device
    return time.perf_counter() - t


def synthetic_batch(batch, seq, vocab, seed=0):
    rng = np.random.RandomState(seed)
    ids = rng.randint(0, vocab, size=(batch, seq + 1)).astype(np.int32)
    return {"input_ids": ids[:, :-1], "segment_ids": np.ones((batch, seq), np.int32),
            "positions": np.broadcast_to(np.arange(seq, dtype=np.int32), (batch, seq)).copy(),
            "targets": ids[:, 1:], "loss_mask": np.ones((batch, seq), np.int32)}


def real_batches(config, loaded, n):
    """The first `n` batches of epoch 0, padded like the reference and packed, plus the padding
    fraction of each plan over the whole epoch."""
    from rt_jax.data.batching import BatchIterator, token_slots
    from rt_jax.data.pipeline import build_training_data
    data = build_training_data(config, loaded.tokenizer, False, context_length=loaded.config.n_positions)
    out = {}
    for packing in (False, True):
        it = BatchIterator(data.iterator.examples, config.train.batch_size, config.seed, packing=packing,
                           seq_len=config.train.max_seq_len, pad_id=loaded.tokenizer.pad_token_id)
        out[packing] = ([it.batch(0, s) for s in range(min(n, it.steps_per_epoch))], token_slots(it))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--real_steps", type=int, default=2, help="0 skips the real-batch comparison")
    ap.add_argument("--real_seq", type=int, default=512)
    ap.add_argument("--torch_device", default="cpu", help="cpu, or cuda on a GPU machine")
    ap.add_argument("--data_dir", default=str(REPO.parent / "shared" / "data"))
    args = ap.parse_args()
    global MESH
    MESH = parallel.make_mesh({"data": -1, "fsdp": 1, "tensor": 1}, jax.devices()[:1])
    config = get_config()
    print(f"device: {jax.devices()[0].device_kind}, {jax.device_count()} device(s)")
    peak = metrics.measured_matmul_peak()
    print(f"measured matmul peak (2048^2 f32, jit): {peak / 1e9:.1f} GFLOP/s")

    hf_config = models.student_config("gpt2")
    loaded = models.from_config(hf_config, seed=0)
    n_params = models.param_count(loaded.module)
    batch = synthetic_batch(args.batch, args.seq, hf_config.vocab_size)
    tokens = args.batch * args.seq
    st, step = rt_jax_trainer(loaded, config, MESH)
    secs, st = time_rt_jax(st, step, [batch] * args.steps, [batch])
    del st
    jax_tps = tokens * args.steps / secs
    flops = metrics.flops_per_token(hf_config, n_params, args.seq) * tokens * args.steps / secs
    torch_secs = time_torch(hf_config, batch, args.steps, device=args.torch_device)
    torch_tps = tokens * args.steps / torch_secs
    print(f"GPT-2 small ({n_params / 1e6:.1f}M params, f32), batch {args.batch} x {args.seq}, AdamW:")
    print(f"  rt_jax  {jax_tps:9.1f} tokens/s")
    print(f"  torch   {torch_tps:9.1f} tokens/s ({args.torch_device})")
    print(f"  ratio rt_jax / torch: {jax_tps / torch_tps:.2f}x")
    print(f"  rt_jax achieved {flops / 1e9:.1f} GFLOP/s = {100 * flops / peak:.0f}% of the measured matmul peak")

    if args.real_steps:
        from rt_jax.teacher import KOJIMA_TEACHER, RationaleStore, import_log
        with tempfile.TemporaryDirectory() as cache:
            store = RationaleStore(cache)
            import_log(store, pathlib.Path(args.data_dir) / "raw/kojima_zero_shot_cot/log/multiarith_zero_shot_cot.log",
                       args.data_dir, problems=[])
            config.update(dict(task="multiarith", method="ft_cot", data_dir=args.data_dir,
                               teacher_cache_dir=cache, teacher=KOJIMA_TEACHER))
            config.train.batch_size, config.train.max_seq_len = args.batch, args.real_seq
            tok = models.ByteTokenizer()
            small = models.from_config(models.student_config("gpt2"), seed=0, tokenizer=tok)
            results = {}
            for packing, (batches, slots) in real_batches(config, small, args.real_steps).items():
                st, step = rt_jax_trainer(small, config, MESH)
                shapes = {b["input_ids"].shape: b for b in batches}
                secs, st = time_rt_jax(st, step, batches, list(shapes.values()))
                del st
                useful = sum(metrics.batch_token_counts(b)[0] for b in batches)
                results[packing] = useful / secs
                name = "packed" if packing else "padded"
                print(f"  real multiarith ft_cot batches, {name}: {useful / secs:8.1f} useful tokens/s "
                      f"({100 * slots['padding_fraction']:.0f}% padding over epoch 0, {slots['steps']} steps/epoch)")
            print(f"  packed / padded useful tokens/s: {results[True] / results[False]:.2f}x")


MESH = None

if __name__ == "__main__":
    main()
