"""First-fit packing: every example once, rows within capacity, the first-fit rule holds."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rt_jax.data.packing import first_fit, split_row


def _replay_first_fit(lengths, capacity, order):
    """Plain first-fit, one example at a time, for comparison."""
    rows, room = [], []
    for i in order:
        for r, left in enumerate(room):
            if all(left[k] >= lengths[i][k] for k in range(len(left))):
                rows[r].append(i)
                room[r] = [left[k] - lengths[i][k] for k in range(len(left))]
                break
        else:
            rows.append([i])
            room.append([capacity[k] - lengths[i][k] for k in range(len(capacity))])
    return rows


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 64), st.integers(1, 32)), min_size=1, max_size=60), st.booleans())
def test_first_fit_places_each_example_once_in_the_first_row_with_room(pairs, two_kinds):
    lengths = np.array(pairs) if two_kinds else np.array([p[0] for p in pairs])
    capacity = [64, 32] if two_kinds else [64]
    rows = first_fit(lengths, capacity)
    assert sorted(i for row in rows for i in row) == list(range(len(pairs)))
    as_2d = lengths.reshape(len(pairs), -1)
    for row in rows:
        assert (as_2d[row].sum(axis=0) <= capacity).all()
    order = np.argsort(-as_2d.sum(axis=1), kind="stable")
    assert rows == _replay_first_fit(as_2d.tolist(), capacity, order.tolist())
    if not two_kinds:  # first fit leaves at most one row half empty or worse
        assert sum(as_2d[row].sum() <= 32 for row in rows) <= 1


def test_too_long_example_is_refused():
    with pytest.raises(ValueError, match="example 1"):
        first_fit(np.array([3, 9]), 8)


def test_split_row_follows_the_token_proportion_and_fits_the_longest():
    lengths = np.array([[30, 70], [20, 90], [40, 60]])  # 90 encoder : 220 decoder tokens
    assert split_row(lengths, 1024) == (320, 704)
    assert split_row(np.array([[300, 10]]), 1024) == (960, 64)
    assert split_row(np.array([[100, 10]] * 9 + [[10, 400]]), 1024) == (100, 924)  # the longest decoder side rules
    assert split_row(np.array([[600, 500]]), 1024) is None
