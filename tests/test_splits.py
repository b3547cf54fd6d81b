"""Split invariants on MovieLens-100K and on random data."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning_divrec.data import build_interactions, leave_one_out, random_ratio_split
from lightning_divrec.data.sources import ml100k


@pytest.fixture(scope="module")
def movielens(ml100k_folder):
    ratings, items = ml100k.files_in(ml100k_folder).read()
    return build_interactions(ratings, items, "ml-100k")


def _frame(users, items, times):
    return pd.DataFrame({"user": users, "item": items, "rating": np.ones(len(users)), "timestamp": times})


def _check_leave_one_out(data, split):
    parts = np.concatenate([split.train, split.valid, split.test])
    assert len(parts) == len(data) == len(np.unique(parts))
    counts = np.bincount(data.user, minlength=data.num_users)
    for name, part in (("valid", split.valid), ("test", split.test)):
        per_user = np.bincount(data.user[part], minlength=data.num_users)
        assert np.array_equal(per_user, (counts >= 3).astype(int)), name
    latest_train = np.full(data.num_users, np.iinfo(np.int64).min)
    np.maximum.at(latest_train, data.user[split.train], data.timestamp[split.train])
    valid_time = np.full(data.num_users, np.iinfo(np.int64).max)
    valid_time[data.user[split.valid]] = data.timestamp[split.valid]
    test_time = np.full(data.num_users, np.iinfo(np.int64).max)
    test_time[data.user[split.test]] = data.timestamp[split.test]
    evaluated = counts >= 3
    assert np.all(latest_train[evaluated] <= valid_time[evaluated])
    assert np.all(valid_time[evaluated] <= test_time[evaluated])


def test_leave_one_out_movielens(movielens):
    split = leave_one_out(movielens)
    _check_leave_one_out(movielens, split)
    assert len(split.test) == len(split.valid) == 943


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 9), st.integers(0, 5)), min_size=1, max_size=60))
def test_leave_one_out_invariants(rows):
    users, items, times = map(np.array, zip(*rows))
    data = build_interactions(_frame(users, items, times), None, "generated")
    _check_leave_one_out(data, leave_one_out(data))


def test_leave_one_out_tie_rule():
    # User 5 has two interactions at the latest time 30: the higher item index is test.
    data = build_interactions(_frame([5, 5, 5, 5], [40, 10, 20, 30], [10, 30, 30, 20]), None, "ties")
    split = leave_one_out(data)
    assert data.item_ids[data.item[split.test]].tolist() == [20]
    assert data.item_ids[data.item[split.valid]].tolist() == [10]


def test_leave_one_out_ignores_row_order():
    frame = _frame([1, 1, 1, 2, 2, 2], [1, 2, 3, 1, 2, 3], [5, 5, 5, 1, 2, 2])
    first = build_interactions(frame, None, "a")
    second = build_interactions(frame.iloc[::-1].reset_index(drop=True), None, "b")
    held_out = lambda data, split: sorted(zip(data.user[split.test], data.item[split.test]))
    assert held_out(first, leave_one_out(first)) == held_out(second, leave_one_out(second))


def _recbole_part_sizes(total, ratios=(0.8, 0.1, 0.1)):
    """RecBole 1.2.1's part sizes, written as a loop for comparison."""
    ratios = [r / sum(ratios) for r in ratios]
    sizes = [int(r * total) for r in ratios]
    sizes[0] = total - sum(sizes[1:])
    for i in range(1, len(ratios)):
        if sizes[0] <= 1:
            break
        if 0 < ratios[-i] * total < 1:
            sizes[-i] += 1
            sizes[0] -= 1
    return sizes


def test_random_split_sizes_match_recbole():
    users = np.repeat(np.arange(40), np.arange(1, 41))
    data = build_interactions(_frame(users, np.arange(len(users)), np.zeros(len(users))), None, "counts")
    split = random_ratio_split(data, seed=3)
    for user in range(40):
        observed = [int((data.user[part] == user).sum()) for part in (split.train, split.valid, split.test)]
        assert observed == _recbole_part_sizes(user + 1), f"user with {user + 1} interactions"


def test_random_split_seeded(movielens):
    first = random_ratio_split(movielens, seed=1)
    again = random_ratio_split(movielens, seed=1)
    other = random_ratio_split(movielens, seed=2)
    assert np.array_equal(first.test, again.test)
    assert not np.array_equal(first.test, other.test)
    parts = np.concatenate([first.train, first.valid, first.test])
    assert len(np.unique(parts)) == len(movielens)
    assert len(first.test) == len(first.valid) == 9596  # sum over users of floor(0.1 n)


def test_rating_threshold_and_id_maps(movielens, ml100k_folder):
    ratings, items = ml100k.files_in(ml100k_folder).read()
    liked = build_interactions(ratings, items, "ml-100k", rating_threshold=4)
    assert len(liked) == int((ratings["rating"] >= 4).sum())
    assert np.all(liked.rating >= 4)
    row = 123
    original = ratings[ratings["rating"] >= 4].iloc[row]
    assert liked.user_ids[liked.user[row]] == original["user"]
    assert liked.item_ids[liked.item[row]] == original["item"]
