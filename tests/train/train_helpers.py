"""Helpers of the training-loop tests: a tiny random GPT-2, a run config on real multiarith data,
small batch iterators, and the final params of a workdir's latest checkpoint."""

import dataclasses
import functools
import types

import jax
import numpy as np
from transformers import GPT2Config

from rt_jax import models
from rt_jax.configs.base import get_config
from rt_jax.data.batching import BatchIterator
from rt_jax.train import checkpoint


@functools.lru_cache(maxsize=None)
def _tiny_student():
    tok = models.ByteTokenizer()
    cfg = GPT2Config(
        vocab_size=tok.vocab_size,
        n_positions=128,
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=tok.eos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    return models.from_config(cfg, seed=0, tokenizer=tok)


def tiny_student():
    """A fresh host copy of one random tiny GPT-2 (training donates its device buffers)."""
    loaded = _tiny_student()
    return dataclasses.replace(loaded, params=jax.tree.map(np.asarray, loaded.params))


def run_config(data_dir, **train):
    c = get_config()
    c.task, c.method, c.student, c.data_dir = "multiarith", "ft", "tiny", str(data_dir)
    c.train.update(
        dict(
            batch_size=4,
            num_epochs=2,
            max_seq_len=128,
            checkpoint_every_steps=2,
            keep_checkpoints=2,
            log_every_steps=1,
            learning_rate=1e-3,
        ),
        **train,
    )
    c.mesh.update(data=2, fsdp=2, tensor=1)  # sharded; (2, 2, 2) equality is in test_train_step
    return c


def small_data(config, examples):
    it = BatchIterator(examples, config.train.batch_size, config.seed, packing=True, seq_len=config.train.max_seq_len)
    return types.SimpleNamespace(iterator=it)


def final_params(workdir):
    ck = checkpoint.Checkpoints(workdir / "checkpoints")
    meta = ck.restore_meta(ck.latest_step())
    step = ck.latest_step()
    ck.close()
    import orbax.checkpoint as ocp

    restored = ocp.StandardCheckpointer().restore(workdir / "checkpoints" / str(step) / "state")
    return step, meta, jax.device_get(restored["params"])
