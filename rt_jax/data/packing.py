"""Greedy first-fit packing of variable-length examples into fixed-size rows.

Encoder-decoder examples have two lengths (encoder tokens, decoder tokens) and go into a row
only where both fit. The search for the first row with room is one vectorised numpy scan per
example, so packing tens of thousands of examples takes well under a second.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np


def first_fit(
    lengths: np.ndarray,
    capacity: Sequence[int] | int,
    order: np.ndarray | None = None,
) -> list[list[int]]:
    """Packs examples into rows; returns each row's example indices (in placement order).

    lengths: int [N] or [N, K] (K length kinds, e.g. encoder and decoder tokens).
    capacity: row size per kind. order: the order examples are placed in (default: longest
    first, i.e. first-fit decreasing, which wastes the least room).
    """
    lengths = np.asarray(lengths, np.int64)
    if lengths.ndim == 1:
        lengths = lengths[:, None]
    capacity = np.broadcast_to(np.asarray(capacity, np.int64), lengths.shape[1:])
    too_long = np.flatnonzero((lengths > capacity).any(axis=1))
    if too_long.size:
        i = int(too_long[0])
        raise ValueError(f"example {i} has length {lengths[i].tolist()} > row size {capacity.tolist()}")
    if order is None:
        order = np.argsort(-lengths.sum(axis=1), kind="stable")
    n = len(lengths)
    room = np.tile(capacity, (max(n, 1), 1))  # at most one row per example
    rows: list[list[int]] = []
    for i in order:
        fits = (room[: len(rows) + 1] >= lengths[i]).all(axis=1)
        r = int(np.argmax(fits))  # row len(rows) is always empty, so something fits
        if r == len(rows):
            rows.append([])
        rows[r].append(int(i))
        room[r] -= lengths[i]
    return rows


def split_row(lengths: np.ndarray, total: int, multiple: int = 64) -> tuple[int, int] | None:
    """Encoder and decoder row sizes that share `total` in the proportion of the data's encoder
    and decoder tokens (multiples of `multiple`), each at least the longest example on its side.
    None when no split fits the longest examples."""
    lengths = np.asarray(lengths, np.int64)
    longest = lengths.max(axis=0)
    enc = int(round(total * lengths[:, 0].sum() / max(lengths.sum(), 1) / multiple)) * multiple
    enc = max(enc, -(-int(longest[0]) // multiple) * multiple)
    dec = total - enc
    if dec < longest[1]:
        enc, dec = int(longest[0]), total - int(longest[0])
    return (enc, dec) if dec >= longest[1] and enc >= longest[0] else None
