"""orbax checkpoints: round trip onto another mesh, keep last K + best."""

import jax
import numpy as np
from test_train_step import train_config
from tiny_model import AXES, init_params

from rt_jax import parallel
from rt_jax.train import checkpoint, optim
from rt_jax.train import state as state_lib


def make_state(mesh):
    opt = optim.make_optimizer(train_config(), 10)
    params = init_params()
    abstract = state_lib.abstract_state(params, opt)
    shardings = state_lib.state_shardings(abstract, AXES, mesh, opt)
    return state_lib.create_state(params, opt, shardings), abstract, shardings


def test_restore_onto_different_mesh(tmp_path):
    mesh_a = parallel.make_mesh({"data": 2, "fsdp": 2, "tensor": 2})
    state, abstract, _ = make_state(mesh_a)
    state = state.replace(step=state.step + 5, params=jax.tree.map(lambda p: p + 1.0, state.params))
    ckpt = checkpoint.Checkpoints(tmp_path / "ckpt", keep=2)
    ckpt.save(state, {"epoch": 1, "batch_in_epoch": 3})
    ckpt.wait()
    mesh_b = parallel.make_mesh({"data": 1, "fsdp": 4, "tensor": 2})
    _, _, shardings_b = make_state(mesh_b)
    restored, meta = ckpt.restore(5, checkpoint.sharded_target(abstract, shardings_b))
    assert meta == {"epoch": 1, "batch_in_epoch": 3}
    assert int(restored.step) == 5
    assert restored.params["fc"]["kernel"].sharding == shardings_b.params["fc"]["kernel"]
    assert restored.params["fc"]["kernel"].addressable_shards[0].data.shape == (4, 16)
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(state), jax.device_get(restored))
    ckpt.close()


def test_keeps_last_k_and_best(tmp_path):
    mesh = parallel.make_mesh({"data": 8, "fsdp": 1, "tensor": 1})
    state, _, _ = make_state(mesh)
    ckpt = checkpoint.Checkpoints(tmp_path / "ckpt", keep=2)
    for step, acc in [(1, 10.0), (2, 50.0), (3, None), (4, 20.0), (5, None)]:
        ckpt.save(state.replace(step=state.step + step), {"step": step}, accuracy=acc)
    ckpt.wait()
    assert ckpt.all_steps() == [2, 4, 5]
    assert ckpt.best_step() == 2 and ckpt.latest_step() == 5
    ckpt.close()
