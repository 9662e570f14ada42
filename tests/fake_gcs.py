"""An in-memory stand-in for Google Cloud Storage behind etils epath (and so orbax's paths):
`gs://` paths read and write a dict, nothing touches the network or the local disk."""

import fsspec  # noqa: F401  (loads fsspec.registry)
from fsspec.implementations.memory import MemoryFileSystem


class FakeGCS(MemoryFileSystem):
    protocol = ("gs", "gcs")
    store: dict = {}
    pseudo_dirs = [""]

    def __init__(self, *args, finalize_on_close=None, **kwargs):  # gcsfs's option, unused here
        super().__init__(*args, **kwargs)
