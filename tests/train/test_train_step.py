"""train_step on 8 fake CPU devices: sharding-invariance, accumulation, overfitting, masking."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from ml_collections import ConfigDict
from tiny_model import AXES, TinyDecoder, init_params, random_batch

from rt_jax import parallel
from rt_jax.train import optim
from rt_jax.train import state as state_lib
from rt_jax.train import step as step_lib

KEYS = step_lib.DECODER_KEYS


def train_config(**overrides):
    c = ConfigDict(
        dict(
            learning_rate=1e-2,
            schedule="constant",
            warmup_steps=0,
            weight_decay=0.01,
            adam_b1=0.9,
            adam_b2=0.999,
            adam_eps=1e-8,
            max_grad_norm=0.0,
        )
    )
    c.update(overrides)
    return c


def run_steps(mesh_cfg, batches, accum=1, devices=None, steps_cfg=None, dropout=False):
    mesh = parallel.make_mesh(mesh_cfg, devices)
    cfg = steps_cfg or train_config()
    opt = optim.make_optimizer(cfg, 100)
    params = init_params()
    shardings = state_lib.state_shardings(state_lib.abstract_state(params, opt), AXES, mesh, opt)
    state = state_lib.create_state(params, opt, shardings)
    fn = step_lib.make_train_step(
        TinyDecoder(),
        False,
        opt,
        optim.learning_rate_schedule(cfg, 100),
        grad_accum_steps=accum,
        mesh=mesh,
        dropout=dropout,
    )
    jitted = step_lib.jit_train_step(fn, shardings, mesh, KEYS)
    history = []
    for b in batches:
        state, m = jitted(state, parallel.global_batch(b, mesh), jax.random.PRNGKey(0))
        history.append(jax.device_get(m))
    return state, history


MESH_222 = {"data": 2, "fsdp": 2, "tensor": 2}
BATCHES = [random_batch(seed=s) for s in range(2)]


@pytest.fixture(scope="module")
def sharded_run():
    """Two steps on the (data=2, fsdp=2, tensor=2) mesh, shared by several tests."""
    return run_steps(MESH_222, BATCHES)


def assert_same_run(run_a, run_b):
    for a, b in zip(run_a[1], run_b[1]):
        np.testing.assert_allclose(a["loss"], b["loss"], rtol=1e-5)
        np.testing.assert_allclose(a["grad_norm"], b["grad_norm"], rtol=1e-4)
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
        jax.device_get(run_a[0].params),
        jax.device_get(run_b[0].params),
    )


def test_sharded_equals_single_device(sharded_run):
    single = run_steps({"data": 1, "fsdp": 1, "tensor": 1}, BATCHES, devices=jax.devices()[:1])
    # the params really are split over fsdp/tensor
    assert sharded_run[0].params["fc"]["kernel"].addressable_shards[0].data.shape == (8, 16)
    assert_same_run(single, sharded_run)


def test_loss_is_mean_ce_over_target_tokens_only(sharded_run):
    batch = BATCHES[0]
    logits = TinyDecoder().apply(
        {"params": init_params()}, batch["input_ids"], batch["positions"], batch["segment_ids"]
    )
    picked = np.take_along_axis(np.asarray(jax.nn.log_softmax(logits)), batch["targets"][..., None], -1)[..., 0]
    expected = -(picked * batch["loss_mask"]).sum() / batch["loss_mask"].sum()
    first = sharded_run[1][0]
    np.testing.assert_allclose(first["loss"], expected, rtol=1e-5)
    assert first["target_tokens"] == batch["loss_mask"].sum()


def test_grad_accumulation_equals_full_batch(sharded_run):
    assert_same_run(sharded_run, run_steps(MESH_222, BATCHES, accum=2))


def test_tiny_model_overfits_one_batch():
    batch = random_batch(batch_size=4, seed=7)
    _, hist = run_steps(
        {"data": 2, "fsdp": 2, "tensor": 1},
        [batch] * 120,
        devices=jax.devices()[:4],
        steps_cfg=train_config(learning_rate=3e-2, weight_decay=0.0),
    )
    assert hist[0]["loss"] > 2.0
    assert hist[-1]["loss"] < 0.05
    assert hist[-1]["token_accuracy"] == 1.0


def test_warmup_and_clipping_reported():
    cfg = train_config(warmup_steps=4, schedule="linear", max_grad_norm=0.1)
    _, hist = run_steps({"data": 8, "fsdp": 1, "tensor": 1}, [random_batch(seed=s) for s in range(3)], steps_cfg=cfg)
    np.testing.assert_allclose([h["learning_rate"] for h in hist], [0.0, 2.5e-3, 5e-3], rtol=1e-6)


def test_bf16_compute_keeps_f32_master_weights(sharded_run):
    mesh = parallel.make_mesh({"data": 1, "fsdp": 1, "tensor": 1}, jax.devices()[:1])
    opt = optim.make_optimizer(train_config(), 10)
    st = state_lib.create_state(init_params(), opt)
    fn = step_lib.make_train_step(
        TinyDecoder(dtype=jnp.bfloat16), False, opt, compute_dtype=jnp.bfloat16, remat="dots", mesh=mesh
    )
    new, m = jax.jit(fn)(st, parallel.global_batch(BATCHES[0], mesh), jax.random.PRNGKey(0))
    assert new.params["fc"]["kernel"].dtype == jnp.float32
    assert st.params["fc"]["kernel"].dtype == jnp.float32
    np.testing.assert_allclose(m["loss"], sharded_run[1][0]["loss"], rtol=2e-2)  # the f32 loss


def test_dropout_uses_rng_deterministically(sharded_run):
    opt = optim.make_optimizer(train_config(), 10)
    fn = jax.jit(step_lib.make_train_step(TinyDecoder(), False, opt, dropout=True))
    batch = {k: jnp.asarray(v) for k, v in BATCHES[0].items()}
    losses = [
        float(fn(state_lib.create_state(init_params(), opt), batch, jax.random.PRNGKey(0))[1]["loss"]) for _ in range(2)
    ]
    other_rng = float(fn(state_lib.create_state(init_params(), opt), batch, jax.random.PRNGKey(1))[1]["loss"])
    assert losses[0] == losses[1] != other_rng
    assert abs(losses[0] - sharded_run[1][0]["loss"]) > 1e-3  # dropout changed the loss
