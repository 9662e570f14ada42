"""Fixtures of the training tests: a persistent compilation cache, tokenized multiarith
examples, and an in-memory gs:// bucket."""

import sys

import jax
import pytest
from etils.epath import backend
from fake_gcs import FakeGCS
from train_helpers import run_config, tiny_student

from rt_jax.train import loop


@pytest.fixture(scope="module")
def compilation_cache(tmp_path_factory):
    """Runs of one test compile the same train step: a persistent cache compiles it once."""
    saved = {
        k: getattr(jax.config, k) for k in ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs")
    }
    jax.config.update("jax_compilation_cache_dir", str(tmp_path_factory.mktemp("xla_cache")))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    yield
    for k, v in saved.items():
        jax.config.update(k, v)


@pytest.fixture(scope="module")
def examples(data_dir):
    """Tokenized multiarith `ft` examples through the real data pipeline (first 24 only)."""
    loaded = tiny_student()
    return loop.build_data(run_config(data_dir), loaded).iterator.examples[:24]


@pytest.fixture
def fake_gcs(monkeypatch):
    """Routes gs:// to a fresh FakeGCS for one test; yields its store ({'gs://b/path': file})."""
    monkeypatch.setattr(FakeGCS, "store", {})
    monkeypatch.setattr(FakeGCS, "pseudo_dirs", [""])
    registry = sys.modules["fsspec.registry"]._registry  # restored after the test
    for protocol in FakeGCS.protocol:
        monkeypatch.setitem(registry, protocol, FakeGCS)
    FakeGCS.clear_instance_cache()
    backend.fsspec_backend._get_filesystem.cache_clear()
    # orbax asks the real bucket whether it has a hierarchical namespace
    from orbax.checkpoint._src.path import gcs_utils

    monkeypatch.setattr(gcs_utils, "is_hierarchical_namespace_enabled", lambda path: False)
    yield FakeGCS.store
    backend.fsspec_backend._get_filesystem.cache_clear()  # epath forgets the fake
