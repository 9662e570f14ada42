"""Train/test splits: the paper's split files and the seeded 70/30 rule behind them."""

import dataclasses
import json
import os
import pathlib
from typing import Callable

import numpy as np

from rt_jax.errors import UserError
from rt_jax.tasks import sources
from rt_jax.tasks.registry import task_info

SPLIT_NAMES = ("default", "template")


@dataclasses.dataclass(frozen=True)
class Split:
    train: list[int]
    test: list[int]


def random_split(n: int, train_fraction: float = 0.7, seed: int = 0) -> Split:
    """The paper's rule: `RandomState(seed).permutation(n)`, the first round(fraction * n)
    are train; both parts sorted."""
    order = np.random.RandomState(seed).permutation(n)
    n_train = round(n * train_fraction)
    return Split(sorted(order[:n_train].tolist()), sorted(order[n_train:].tolist()))


def subsample(indices, n: int, seed: int = 0) -> list[int]:
    """The paper's subsampling (AQuA's 10,000 training questions; the few-shot ablations):
    `RandomState(seed).permutation(indices)`, first n, sorted."""
    return sorted(np.random.RandomState(seed).permutation(list(indices))[:n].tolist())


def split_path(task: str, data_dir, name: str = "default") -> pathlib.Path:
    return pathlib.Path(data_dir) / "splits" / f"{task}__{name}.json"


def load_split(
    task: str,
    data_dir: os.PathLike | str | None,
    name: str = "default",
    *,
    cache_dir=None,
    download: bool = False,
    fetch: Callable[[str], bytes] | None = None,
) -> Split:
    """The split `name` of `task` (`splits/<task>__<name>.json`), checked: sorted, disjoint,
    every index in [0, dataset size)."""
    size = task_info(task, data_dir).size
    filename = f"{task}__{name}.json"
    downloadable = download and filename in sources.SPLIT_SHA256
    path = sources.locate("splits/" + filename, data_dir, cache_dir, downloadable, fetch)
    if path is None:
        raise UserError(
            f"{split_path(task, data_dir or cache_dir or sources.DEFAULT_CACHE_DIR, name)}: split "
            f"file not found; expected one of the reasoning-teacher splits ({', '.join(SPLIT_NAMES)}; "
            f"template exists for multiarith and date_understanding)"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f'{path}: not valid JSON ({e}); expected {{"train": [...], "test": [...]}}') from None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in ("train", "test")):
        raise UserError(f'{path}: expected {{"train": [indices], "test": [indices]}}')
    for part in ("train", "test"):
        for position, index in enumerate(data[part]):
            if type(index) is not int or not 0 <= index < size:
                raise UserError(
                    f"{path}: {part}[{position}] = {index!r} out of range; expected an integer "
                    f"sample index in [0, {size}) for {task}"
                )
        if data[part] != sorted(set(data[part])):
            raise UserError(f"{path}: {part} indices are not sorted and unique")
    overlap = set(data["train"]) & set(data["test"])
    if overlap:
        raise UserError(f"{path}: index {min(overlap)} is in both train and test; expected disjoint parts")
    return Split(data["train"], data["test"])
