"""An in-memory stand-in for Google Cloud Storage behind etils epath (and so orbax's paths):
`gs://` paths read and write a dict, nothing touches the network or the local disk."""
import sys

import fsspec  # noqa: F401  (loads fsspec.registry)
import pytest
from etils.epath import backend
from fsspec.implementations.memory import MemoryFileSystem


class FakeGCS(MemoryFileSystem):
    protocol = ("gs", "gcs")
    store: dict = {}
    pseudo_dirs = [""]

    def __init__(self, *args, finalize_on_close=None, **kwargs):  # gcsfs's option, unused here
        super().__init__(*args, **kwargs)


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
