"""Mesh construction and logical-axis rules on 8 fake CPU devices."""

import jax
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from rt_jax import parallel
from rt_jax.errors import UserError


def test_mesh_fills_minus_one():
    mesh = parallel.make_mesh({"data": -1, "fsdp": 2, "tensor": 1})
    assert dict(mesh.shape) == {"data": 4, "fsdp": 2, "tensor": 1}
    assert parallel.data_parallel_size(mesh) == 8


def test_mesh_larger_than_devices_is_user_error():
    with pytest.raises(UserError, match="needs 16 devices"):
        parallel.make_mesh({"data": 4, "fsdp": 2, "tensor": 2})
    with pytest.raises(UserError, match="not divisible"):
        parallel.make_mesh({"data": -1, "fsdp": 3, "tensor": 1})


def test_rules_and_fit_to_shape():
    mesh = parallel.make_mesh({"data": 2, "fsdp": 2, "tensor": 2})
    assert parallel.logical_to_spec(("batch", "length", "embed")) == P(("data", "fsdp"), None, None)
    assert parallel.logical_to_spec(("embed", "mlp")) == P("fsdp", "tensor")
    # a mesh axis appears at most once per array
    assert parallel.logical_to_spec(("embed", "embed")) == P("fsdp", None)
    # GPT-2's vocab (50257) is odd: tensor is dropped there, fsdp kept on embed
    spec = parallel.fit_spec(parallel.logical_to_spec(("vocab", "embed")), (50257, 768), mesh)
    assert spec == P(None, "fsdp")


def test_param_shardings_place_shards():
    mesh = parallel.make_mesh({"data": 2, "fsdp": 2, "tensor": 2})
    params = {"w": np.ones((8, 6), np.float32), "b": np.ones((6,), np.float32)}
    axes = {"w": ("embed", "mlp"), "b": ("mlp",)}
    shardings = parallel.param_shardings(axes, params, mesh)
    placed = jax.device_put(params, shardings)
    assert placed["w"].addressable_shards[0].data.shape == (4, 3)
    assert placed["b"].addressable_shards[0].data.shape == (3,)
    np.testing.assert_array_equal(np.asarray(placed["w"]), params["w"])


def test_batch_size_checks():
    mesh = parallel.make_mesh({"data": 2, "fsdp": 2, "tensor": 2})
    parallel.check_batch_size(8, mesh)
    with pytest.raises(UserError, match="data-parallel size 4"):
        parallel.check_batch_size(6, mesh)
    with pytest.raises(UserError, match="grad_accum_steps=3"):
        parallel.check_batch_size(8, mesh, grad_accum_steps=3)
    with pytest.raises(UserError, match="microbatch 4"):
        parallel.check_batch_size(8, parallel.make_mesh({"data": 8, "fsdp": 1, "tensor": 1}), 2)


def test_global_batch_is_sharded_over_batch_axes():
    mesh = parallel.make_mesh({"data": 2, "fsdp": 2, "tensor": 2})
    x = np.arange(8 * 3, dtype=np.int32).reshape(8, 3)
    g = parallel.global_batch({"input_ids": x}, mesh)["input_ids"]
    np.testing.assert_array_equal(np.asarray(g), x)
    assert g.addressable_shards[0].data.shape == (2, 3)
