"""Unified datasets: `{sample_index, question, answer}` rebuilt from the raw files."""

import dataclasses
import functools
import numbers
import os
import pathlib
from typing import Callable, Iterable, Iterator

from rt_jax.errors import UserError
from rt_jax.tasks import sources
from rt_jax.tasks.registry import task_info


@dataclasses.dataclass(frozen=True)
class Example:
    sample_index: int
    question: str
    answer: str


@dataclasses.dataclass(frozen=True)
class Dataset:
    """The examples of one task that could be built. `size` is the full dataset size; when a
    source file is missing, `missing` says which and how to get it, and its rows are absent
    (their sample indices are not reused)."""

    task: str
    examples: tuple[Example, ...]
    size: int
    missing: tuple[str, ...] = ()
    source_files: tuple[str, ...] = ()  # the files it was built from

    @functools.cached_property
    def _by_index(self) -> dict[int, Example]:
        return {ex.sample_index: ex for ex in self.examples}

    def __len__(self) -> int:
        return len(self.examples)

    def __iter__(self) -> Iterator[Example]:
        return iter(self.examples)

    def __contains__(self, sample_index) -> bool:
        return sample_index in self._by_index

    def __getitem__(self, sample_index: int) -> Example:
        try:
            return self._by_index[sample_index]
        except (KeyError, TypeError):
            pass
        if isinstance(sample_index, numbers.Integral) and 0 <= sample_index < self.size:
            why = "; ".join(self.missing) or "not built"
            raise UserError(f"{self.task}: sample_index {sample_index} is not available ({why})")
        raise UserError(
            f"{self.task}: sample_index {sample_index!r} out of range; expected an integer in [0, {self.size})"
        )

    @property
    def complete(self) -> bool:
        return not self.missing

    def select(self, sample_indices: Iterable[int]) -> list[Example]:
        """The examples at `sample_indices`, in that order (UserError naming a bad index)."""
        return [self[i] for i in sample_indices]


def load_dataset(
    task: str,
    data_dir: os.PathLike | str | None,
    *,
    cache_dir=None,
    download: bool = False,
    fetch: Callable[[str], bytes] | None = None,
) -> Dataset:
    """Builds the unified dataset of `task` from the raw files under `data_dir` (or the cache;
    with download=True, missing files are fetched from their public origin, verified)."""
    if data_dir is not None and not download and not pathlib.Path(data_dir).is_dir():
        # no file could be found: an empty dataset would only fail later, far from the cause
        raise UserError(
            f"data_dir={os.fspath(data_dir)!r}: no such folder; expected the folder holding the raw task files "
            "(raw/, splits/), or download=True"
        )
    info = task_info(task, data_dir)
    located = []
    for part in info.parts:
        path = sources.locate(part.path, data_dir, cache_dir, download, fetch)
        stamp = None if path is None else (str(path), path.stat().st_mtime_ns, path.stat().st_size)
        located.append(stamp)
    missing = tuple(
        sources.missing_message(sources.SOURCES[part.path], data_dir, cache_dir)
        for part, stamp in zip(info.parts, located)
        if stamp is None
    )
    return _build(task, tuple(located), missing)


@functools.lru_cache(maxsize=32)
def _build(task: str, located: tuple, missing: tuple[str, ...]) -> Dataset:
    """Parses the located files; cached on (path, mtime, size) so repeated loads are free and
    a changed file is read again."""
    info = task_info(task)
    examples, offset = [], 0
    for part, stamp in zip(info.parts, located):
        if stamp is not None:
            path = pathlib.Path(stamp[0])
            rows = part.read(path)
            if len(rows) != part.rows:
                raise UserError(f"{path}: {len(rows)} rows; expected {part.rows} (truncated or wrong file?)")
            examples += [Example(offset + i, q, a) for i, (q, a) in enumerate(rows)]
        offset += part.rows
    return Dataset(task, tuple(examples), info.size, missing, tuple(stamp[0] for stamp in located if stamp is not None))
