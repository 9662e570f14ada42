"""The rationale cache on disk: append-only JSON-lines shards, one per (teacher, method, task).

Layout: `<root>/<teacher>/<method>/<task>.jsonl`, one record per line (readable with `less`).

Safety rules, because a cache may hold $1000 of API calls:
- Records are only ever appended; a line is written with one `write` of its bytes plus the newline,
  so a killed writer leaves at most one partial last line.
- Opening a writer repairs a partial last line: the bytes are saved next to the shard
  (`<task>.jsonl.partial-<n>`) before the shard is cut back to its last full line. Such a repair
  loses no record and is reported in `RationaleStore.repairs`, not as a problem.
- A key (teacher, method, task, sample_index, completion_index) is written once. Appending the same
  record again is a no-op; appending a different record under an existing key raises `Conflict`.
- One writer per shard: an exclusive `flock` on `<task>.jsonl.lock`; a second writer gets a UserError.
- Readers never modify anything; bad lines are reported as `file:line: reason` and skipped.
"""

from __future__ import annotations

import fcntl
import os
import pathlib
import time
from typing import Iterator

from rt_jax.errors import UserError
from rt_jax.teacher.record import InvalidRecord, Record, check_name, record_from_json

SHARD_SUFFIX = ".jsonl"


class Conflict(Exception):
    """A different record already exists under the same key (never overwritten)."""


def _parse_lines(path: pathlib.Path, data: bytes, problems: list[str]) -> list[Record]:
    """Valid records of a shard's bytes, in file order; bad lines go to `problems`."""
    teacher, method, task = path.parent.parent.name, path.parent.name, path.name[: -len(SHARD_SUFFIX)]
    records, seen = [], {}
    lines = data.split(b"\n")
    complete = lines[:-1]  # the piece after the last newline is empty or a partial line
    if lines[-1]:
        problems.append(
            f"{path}:{len(lines)}: truncated last line ({len(lines[-1])} bytes without "
            "a newline; a writer was killed or is still running), skipped"
        )
    for lineno, raw in enumerate(complete, start=1):
        if not raw.strip():
            continue
        try:
            rec = record_from_json(raw.decode("utf-8"))
            if (rec.teacher, rec.method, rec.task) != (teacher, method, task):
                raise InvalidRecord(
                    f"record of {rec.teacher}/{rec.method}/{rec.task} in the shard of {teacher}/{method}/{task}"
                )
        except (InvalidRecord, UnicodeDecodeError) as e:
            problems.append(f"{path}:{lineno}: {e}, skipped")
            continue
        if rec.key in seen:
            if seen[rec.key] != rec:
                problems.append(
                    f"{path}:{lineno}: second, different record for sample "
                    f"{rec.sample_index} completion {rec.completion_index}; the first is kept"
                )
            continue
        seen[rec.key] = rec
        records.append(rec)
    return records


class RationaleStore:
    """A directory of shards. Cheap to create; reads are cached per shard by (mtime, size).
    `repairs` collects one line per shard tail its writers repaired (pass a list to share one)."""

    def __init__(self, root: str | os.PathLike, repairs: list[str] | None = None):
        self.root = pathlib.Path(root)
        self.repairs = repairs if repairs is not None else []
        self._cache: dict[pathlib.Path, tuple[tuple[int, int], list[Record], list[str]]] = {}

    def shard_path(self, teacher: str, method: str, task: str) -> pathlib.Path:
        for kind, name in (("teacher", teacher), ("method", method), ("task", task)):
            try:
                check_name(kind, name)
            except InvalidRecord as e:
                raise UserError(str(e)) from None
        return self.root / teacher / method / f"{task}{SHARD_SUFFIX}"

    def shards(self) -> list[tuple[str, str, str]]:
        """(teacher, method, task) of every shard on disk, sorted."""
        found = []
        for path in sorted(self.root.glob(f"*/*/*{SHARD_SUFFIX}")):
            found.append((path.parent.parent.name, path.parent.name, path.name[: -len(SHARD_SUFFIX)]))
        return found

    def read(self, teacher: str, method: str, task: str, problems: list[str] | None = None) -> list[Record]:
        """All valid records of one shard in file order ([] if there is none)."""
        path = self.shard_path(teacher, method, task)
        try:
            st = path.stat()
        except FileNotFoundError:
            return []
        stamp = (st.st_mtime_ns, st.st_size)
        cached = self._cache.get(path)
        if cached is None or cached[0] != stamp:
            shard_problems: list[str] = []
            records = _parse_lines(path, path.read_bytes(), shard_problems)
            cached = (stamp, records, shard_problems)
            self._cache[path] = cached
        if problems is not None:
            problems.extend(cached[2])
        return list(cached[1])

    def by_sample(
        self, teacher: str, method: str, task: str, problems: list[str] | None = None
    ) -> dict[int, list[Record]]:
        """sample_index -> its records sorted by completion_index."""
        grouped: dict[int, list[Record]] = {}
        for rec in self.read(teacher, method, task, problems):
            grouped.setdefault(rec.sample_index, []).append(rec)
        for recs in grouped.values():
            recs.sort(key=lambda r: r.completion_index)
        return grouped

    def writer(
        self, teacher: str, method: str, task: str, problems: list[str] | None = None, fsync_every_s: float = 5.0
    ) -> "ShardWriter":
        return ShardWriter(self.shard_path(teacher, method, task), problems, fsync_every_s, self.repairs)

    def __iter__(self) -> Iterator[Record]:
        for shard in self.shards():
            yield from self.read(*shard)


def _save_partial_tail(path: pathlib.Path, tail: bytes) -> pathlib.Path:
    n = 0
    while True:
        backup = path.with_name(f"{path.name}.partial-{n}")
        try:
            with open(backup, "xb") as f:  # "x": never overwrite an earlier backup
                f.write(tail)
                f.flush()
                os.fsync(f.fileno())
            return backup
        except FileExistsError:
            n += 1


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class ShardWriter:
    """Appends records to one shard under an exclusive lock. Use as a context manager."""

    def __init__(
        self, path: pathlib.Path, problems: list[str] | None, fsync_every_s: float, repairs: list[str] | None = None
    ):
        self.path = path
        self.problems = problems if problems is not None else []
        self.repairs = repairs if repairs is not None else []
        self.fsync_every_s = fsync_every_s
        self.written = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise UserError(
                f"{path}: another process is writing this shard "
                f"(lock {path}.lock is held); wait for it or use another cache"
            ) from None
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        self._repair_tail()
        with open(path, "rb") as f:
            records = _parse_lines(path, f.read(), self.problems)
        self._existing = {r.key: r for r in records}
        self._last_sync = time.monotonic()

    def _repair_tail(self) -> None:
        data = self.path.read_bytes()
        if not data or data.endswith(b"\n"):
            return
        cut = data.rfind(b"\n") + 1
        tail = data[cut:]
        try:  # the whole record got out but its newline did not: just finish the line
            record_from_json(tail.decode("utf-8"))
            os.write(self._fd, b"\n")
            self.repairs.append(f"{self.path}: repaired: the last record had no newline; completed it")
        except (InvalidRecord, UnicodeDecodeError):
            backup = _save_partial_tail(self.path, tail)
            os.ftruncate(self._fd, cut)
            self.repairs.append(
                f"{self.path}: repaired: cut a truncated last line ({len(tail)} bytes, "
                f"saved to {backup.name}) left by an interrupted writer; no record lost"
            )
        os.fsync(self._fd)

    def __contains__(self, key) -> bool:
        return key in self._existing

    def keys(self):
        return self._existing.keys()

    def get(self, key) -> Record | None:
        return self._existing.get(key)

    def append(self, record: Record) -> bool:
        """Write `record`; False if the identical record is already there; Conflict if a different one is."""
        old = self._existing.get(record.key)
        if old is not None:
            if old == record:
                return False
            raise Conflict(
                f"{self.path}: sample {record.sample_index} completion "
                f"{record.completion_index} already holds a different record; not overwritten"
            )
        if (
            self.path.parent.parent.parent / record.teacher / record.method / f"{record.task}{SHARD_SUFFIX}"
            != self.path
        ):
            raise ValueError(f"record {record.key[:3]} does not belong in {self.path}")
        _write_all(self._fd, (record.to_json() + "\n").encode("utf-8"))
        self._existing[record.key] = record
        self.written += 1
        if time.monotonic() - self._last_sync > self.fsync_every_s:
            os.fsync(self._fd)
            self._last_sync = time.monotonic()
        return True

    def close(self) -> None:
        if self._fd is not None:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)

    def __enter__(self) -> "ShardWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
