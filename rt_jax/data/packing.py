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
    if lengths.shape[1] == 1 or (lengths[:, 1:] == 0).all():  # one kind: cheaper 1-D scans
        lengths, capacity = lengths[:, :1], capacity[:1]
    room = np.tile(capacity, (max(len(lengths), 1), 1))  # at most one row per example
    flat_room, flat_len = room[:, 0], lengths[:, 0]
    smallest = lengths.min(axis=0)
    one_kind = lengths.shape[1] == 1
    rows: list[list[int]] = []
    first_open = 0  # rows before it cannot take even the smallest example: never scanned again
    for i in order.tolist():
        if one_kind:
            r = first_open + int(np.argmax(flat_room[first_open : len(rows) + 1] >= flat_len[i]))
        else:
            r = first_open + int(np.argmax((room[first_open : len(rows) + 1] >= lengths[i]).all(axis=1)))
        # row len(rows) is still empty, so something always fits
        if r == len(rows):
            rows.append([])
        rows[r].append(i)
        room[r] -= lengths[i]
        while first_open < len(rows) and (room[first_open] < smallest).any():
            first_open += 1
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
