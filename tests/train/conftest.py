"""Fixtures of the training tests: a persistent compilation cache and tokenized multiarith
examples (the in-memory gs:// bucket, `fake_gcs`, is in tests/conftest.py)."""

import jax
import pytest
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
