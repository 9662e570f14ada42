"""Static shapes: bucketing of batch size and prompt length, and padding."""

import numpy as np


def bucket(n: int, minimum: int = 1, multiple: int = 1) -> int:
    """Smallest power of two >= max(n, minimum), rounded up to a multiple of `multiple`
    (the number of data shards), so a whole test set compiles a handful of times."""
    size = max(1, minimum)
    while size < n:
        size *= 2
    return -(-size // multiple) * multiple


def pad_prompts(prompts: list[list[int]], length: int, rows: int, pad_id: int, side: str):
    """ids, mask [rows, length] int32; rows beyond len(prompts) are a single pad token
    (their outputs are dropped)."""
    ids = np.full((rows, length), pad_id, np.int32)
    mask = np.zeros((rows, length), np.int32)
    for i, p in enumerate(prompts):
        sl = slice(length - len(p), length) if side == "left" else slice(0, len(p))
        ids[i, sl] = p
        mask[i, sl] = 1
    for i in range(len(prompts), rows):  # filler rows: one real token so attention is defined
        j = length - 1 if side == "left" else 0
        mask[i, j] = 1
    return ids, mask


def batches_by_length(lengths: list[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (longest first), so padding is small
    and the few longest prompts share a bucket."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
