"""Stop strings as token-id suffixes, checked inside the compiled loop.

A stop string is matched on token ids: each string is encoded as it would appear at the
start of a completion and after a space (BPE tokenizers give different ids), and a row
stops once its generated ids end with one of these patterns. The text is cut again on
the host (`cut_at_stop`), which also catches spellings the patterns missed.
"""

import jax.numpy as jnp
import numpy as np


def stop_patterns(tokenizer, stop_strings) -> np.ndarray:
    """[num_patterns, width] int32, right-aligned, -2 on the left (never a token id).

    Returns a [0, 1] array when there are no stop strings."""
    patterns = set()
    for s in stop_strings:
        for variant in (s, " " + s):
            ids = tuple(_encode_plain(tokenizer, variant))
            if ids:
                patterns.add(ids)
    if not patterns:
        return np.zeros((0, 1), np.int32)
    width = max(len(p) for p in patterns)
    out = np.full((len(patterns), width), -2, np.int32)
    for i, p in enumerate(sorted(patterns)):
        out[i, width - len(p) :] = p
    return out


def _encode_plain(tokenizer, text: str) -> list[int]:
    """Token ids of `text` with no special tokens (no T5 </s>, no BOS)."""
    try:
        ids = tokenizer.encode(text, add_special_tokens=False)
    except TypeError:  # rt_jax's ByteTokenizer has no special tokens to add
        ids = tokenizer.encode(text)
    return list(ids)


def matches_stop(window, patterns):
    """window [..., width] latest ids (right-aligned, -1 where nothing was generated yet);
    patterns [P, width]. True where the window ends with one of the patterns."""
    if patterns.shape[0] == 0:
        return jnp.zeros(window.shape[:-1], bool)
    pats = jnp.asarray(patterns)
    same = (window[..., None, :] == pats) | (pats == -2)
    return jnp.any(jnp.all(same, axis=-1), axis=-1)


def cut_at_stop(text: str, stop_strings) -> tuple[str, bool]:
    """Text up to and including the first stop string, and whether one was found."""
    best = None
    for s in stop_strings:
        i = text.find(s)
        if i >= 0 and (best is None or i + len(s) < best):
            best = i + len(s)
    if best is None:
        return text, False
    return text[:best], True
