"""Where a run's files live: a local folder or a bucket (`gs://...`), through etils epath.

pathlib would turn `gs://b/run` into a local folder `gs:/b/run`; every workdir path goes through
`workdir_path` instead. Object stores have no append and no rename, so files that grow (metrics
lines, TensorBoard events, prediction shards) are written in a local staging folder and copied
whole to the bucket (`Mirror`); single files are written in one upload, which is atomic there."""

from __future__ import annotations

import os
import shutil
import tempfile
import time

from etils import epath


def workdir_path(path: str | os.PathLike) -> epath.Path:
    """An epath for `path`; local paths made absolute (orbax wants absolute directories)."""
    p = epath.Path(path)
    return epath.Path(os.path.abspath(p)) if is_local(p) else p


def is_local(path: str | os.PathLike) -> bool:
    return "://" not in os.fspath(path)


def write_text_atomic(path: epath.Path, text: str) -> None:
    """Readers never see a half-written file: a local rename, or one object upload."""
    if is_local(path):
        tmp = path.parent / (path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    else:
        path.write_text(text, encoding="utf-8")


class Mirror:
    """A local folder standing in for `remote` (a folder of a bucket): `fetch` copies a remote
    file down before it is appended to, `push` copies changed files up (whole), at most every
    `min_interval_s` unless forced."""

    def __init__(self, remote: epath.Path, min_interval_s: float = 30.0):
        self.remote = remote
        self.local = epath.Path(tempfile.mkdtemp(prefix="rt_jax_mirror_"))
        self.min_interval_s = min_interval_s
        self._pushed: dict[str, tuple[int, int]] = {}  # relative name -> (size, mtime_ns) uploaded
        self._last_push = float("-inf")

    def fetch(self, relative: str) -> epath.Path:
        """The local path of `relative`, holding the remote file's bytes when there is one."""
        local, remote = self.local / relative, self.remote / relative
        local.parent.mkdir(parents=True, exist_ok=True)
        if remote.exists() and not local.exists():
            local.write_bytes(remote.read_bytes())
            st = os.stat(local)
            self._pushed[relative] = (st.st_size, st.st_mtime_ns)
        return local

    def push(self, force: bool = False, skip_suffixes: tuple[str, ...] = (".lock",)) -> None:
        now = time.monotonic()
        if not force and now - self._last_push < self.min_interval_s:
            return
        self._last_push = now
        for root, _, files in os.walk(self.local):
            for name in files:
                if name.endswith(skip_suffixes):
                    continue
                local = os.path.join(root, name)
                relative = os.path.relpath(local, self.local)
                st = os.stat(local)
                if self._pushed.get(relative) == (st.st_size, st.st_mtime_ns):
                    continue
                target = self.remote / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(local, "rb") as f:
                    target.write_bytes(f.read())
                self._pushed[relative] = (st.st_size, st.st_mtime_ns)

    def close(self) -> None:
        self.push(force=True)
        shutil.rmtree(self.local, ignore_errors=True)
