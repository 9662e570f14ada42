"""One process of a multi-host training check: `python multihost_worker.py PROCESS_ID
NUM_PROCESSES LOCAL_DEVICES PORT OUT.npz`. Every process runs the same code (as every worker of a
TPU pod slice runs the same command); jax.distributed.initialize joins them into one device set.

Trains a tiny GPT-2 with rt_jax's sharded train step for a few steps on a (data 2, fsdp 2) mesh
over the global devices: parameters are split across processes, each process feeds only its
own rows of the batch. Writes the global device ids, losses and the final parameters."""

import os
import sys

process_id, num_processes, local_devices, port, out_path = sys.argv[1:6]
os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={local_devices}"
os.environ["JAX_PLATFORMS"] = "cpu"

import jax  # noqa: E402
import ml_collections  # noqa: E402
import numpy as np  # noqa: E402
import transformers  # noqa: E402
from jax.experimental import multihost_utils  # noqa: E402

from rt_jax import models, parallel  # noqa: E402
from rt_jax.train import state as train_state  # noqa: E402
from rt_jax.train import step as train_step  # noqa: E402
from rt_jax.train.optim import make_optimizer  # noqa: E402

STEPS, BATCH, LENGTH = 3, 8, 16

parallel.initialize_distributed(
    ml_collections.ConfigDict(
        dict(num_processes=int(num_processes), coordinator_address=f"127.0.0.1:{port}", process_id=int(process_id))
    )
)

mesh = parallel.make_mesh({"data": 2, "fsdp": 2, "tensor": 1})
hf_config = transformers.GPT2Config(vocab_size=64, n_positions=LENGTH, n_embd=32, n_layer=2, n_head=2, n_inner=64)
loaded = models.from_config(hf_config, seed=0)
initial = {
    jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in jax.tree_util.tree_leaves_with_path(loaded.params)
}
train_config = ml_collections.ConfigDict(
    dict(
        learning_rate=1e-2,
        warmup_steps=0,
        schedule="constant",
        adam_b1=0.9,
        adam_b2=0.999,
        adam_eps=1e-8,
        weight_decay=0.01,
        max_grad_norm=0.0,
    )
)
optimizer = make_optimizer(train_config, STEPS)
abstract = train_state.abstract_state(loaded.params, optimizer)
shardings = train_state.state_shardings(abstract, models.logical_axes(loaded), mesh, optimizer)
state = train_state.create_state(loaded.params, optimizer, shardings)
keys = train_step.batch_keys(False)
step_fn = train_step.jit_train_step(train_step.make_train_step(loaded.module, False, optimizer), shardings, mesh, keys)

rng = np.random.default_rng(0)  # the same global batches in every process
rows = slice(
    jax.process_index() * BATCH // jax.process_count(), (jax.process_index() + 1) * BATCH // jax.process_count()
)
losses = []
for _ in range(STEPS):
    ids = rng.integers(1, 64, size=(BATCH, LENGTH + 1)).astype(np.int32)
    batch = {
        "input_ids": ids[:, :-1],
        "targets": ids[:, 1:],
        "segment_ids": np.ones((BATCH, LENGTH), np.int32),
        "positions": np.broadcast_to(np.arange(LENGTH, dtype=np.int32), (BATCH, LENGTH)),
        "loss_mask": np.ones((BATCH, LENGTH), np.int32),
    }
    local = {k: np.ascontiguousarray(v[rows]) for k, v in batch.items() if k in keys}
    state, metrics = step_fn(state, parallel.global_batch(local, mesh), jax.random.PRNGKey(0))
    losses.append(float(metrics["loss"]))

params = multihost_utils.process_allgather(state.params, tiled=True)
flat = {jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in jax.tree_util.tree_leaves_with_path(params)}
np.savez(
    out_path,
    device_ids=np.array(sorted(d.id for d in jax.devices())),
    device_processes=np.array(sorted(d.process_index for d in jax.devices())),
    process_count=jax.process_count(),
    local_device_count=jax.local_device_count(),
    losses=np.array(losses),
    **{f"param{k}": v for k, v in flat.items()},
    **{f"init{k}": v for k, v in initial.items()},
)
