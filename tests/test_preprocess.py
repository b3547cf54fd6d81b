"""Duplicate policy, k-core and the new splits: hand cases and hypothesis invariants."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf

from lightning_divrec.config import DataConfig
from lightning_divrec.data.interactions import build_interactions
from lightning_divrec.data.prepare import make_split
from lightning_divrec.data.preprocess import apply_duplicate_policy, k_core, preprocess
from lightning_divrec.data.sources.common import DataFormatError
from lightning_divrec.data.splits import ratio_split, time_cut_split

rows_strategy = st.lists(
    st.tuples(st.integers(0, 6), st.integers(0, 9), st.integers(0, 5)), min_size=1, max_size=60
)


def _frame(users, items, times, ratings=None):
    return pd.DataFrame(
        {
            "user": np.asarray(users, dtype=np.int64),
            "item": np.asarray(items, dtype=np.int64),
            "rating": np.ones(len(users)) if ratings is None else np.asarray(ratings, dtype=np.float64),
            "timestamp": np.asarray(times, dtype=np.int64),
        }
    )


def test_duplicate_policies():
    # Pair (1, 10) at times 5, 3, 3 (rows 0, 1, 2); pair (2, 10) once.
    frame = _frame([1, 1, 1, 2], [10, 10, 10, 10], [5, 3, 3, 4], ratings=[1, 2, 3, 4])
    assert apply_duplicate_policy(frame, "keep").equals(frame)
    # First by time: row 1 (time 3, earlier row than row 2).
    assert apply_duplicate_policy(frame, "first")["rating"].tolist() == [2.0, 4.0]
    # Last by time: row 0 (time 5).
    assert apply_duplicate_policy(frame, "last")["rating"].tolist() == [1.0, 4.0]
    assert apply_duplicate_policy(frame, "drop")["rating"].tolist() == [4.0]


@settings(max_examples=60, deadline=None)
@given(rows_strategy, st.sampled_from(["first", "last", "drop"]))
def test_duplicate_policy_matches_pandas(rows, policy):
    users, items, times = map(np.array, zip(*rows))
    frame = _frame(users, items, times, ratings=np.arange(len(users)))
    kept = apply_duplicate_policy(frame, policy)
    by_time = frame.sort_values("timestamp", kind="stable")
    expected = by_time.drop_duplicates(["user", "item"], keep=False if policy == "drop" else policy).sort_index()
    assert kept["rating"].tolist() == expected["rating"].tolist()


def test_k_core_cascades():
    # Item 30 has one interaction. Removing it leaves user 3 with one item, so user 3
    # goes too. Then item 20 has one user left, so it goes, and user 2 with it.
    frame = _frame([1, 1, 2, 2, 3, 3, 4, 4], [10, 11, 10, 20, 20, 30, 10, 11], range(8))
    kept = k_core(frame, min_user=2, min_item=2)
    assert sorted(kept["user"].unique().tolist()) == [1, 4]
    assert sorted(kept["item"].unique().tolist()) == [10, 11]


def _reference_k_core(rows, min_user, min_item):
    """Remove one offending row group at a time until none is left (slow and obviously correct)."""
    rows = list(rows)
    while True:
        users = Counter(user for user, _ in rows)
        items = Counter(item for _, item in rows)
        kept = [(u, i) for u, i in rows if users[u] >= min_user and items[i] >= min_item]
        if len(kept) == len(rows):
            return kept
        rows = kept


@settings(max_examples=60, deadline=None)
@given(rows_strategy, st.integers(1, 4), st.integers(1, 4))
def test_k_core_matches_reference(rows, min_user, min_item):
    users, items, times = map(np.array, zip(*rows))
    kept = k_core(_frame(users, items, times), min_user, min_item)
    expected = _reference_k_core(list(zip(users.tolist(), items.tolist())), min_user, min_item)
    assert list(zip(kept["user"].tolist(), kept["item"].tolist())) == expected
    if len(kept):
        assert kept["user"].value_counts().min() >= min_user
        assert kept["item"].value_counts().min() >= min_item


def test_empty_after_filtering_names_setting():
    cfg = OmegaConf.structured(DataConfig(rating_threshold=6.0))
    with pytest.raises(DataFormatError, match=r"src.csv: no interactions left after data.rating_threshold=6.0"):
        preprocess(_frame([1], [2], [3]), cfg, "src.csv")
    cfg = OmegaConf.structured(DataConfig(min_user_interactions=5))
    with pytest.raises(DataFormatError, match="data.min_user_interactions=5"):
        preprocess(_frame([1, 1], [2, 3], [3, 4]), cfg, "src.csv")


def _check_partition(data, split):
    parts = np.concatenate([split.train, split.valid, split.test])
    assert len(parts) == len(data)
    assert len(np.unique(parts)) == len(data)


def _recbole_sizes(count, ratios):
    """Part sizes of one user with ``count`` interactions, written out from RecBole's rule."""
    total = sum(ratios)
    shares = [ratio / total for ratio in ratios]
    valid, test = int(shares[1] * count // 1), int(shares[2] * count // 1)
    train = count - valid - test
    for index, share in ((2, shares[2]), (1, shares[1])):
        if train > 1 and 0 < share * count < 1:
            train -= 1
            if index == 2:
                test += 1
            else:
                valid += 1
    return train, valid, test


@settings(max_examples=60, deadline=None)
@given(rows_strategy, st.sampled_from([(0.8, 0.1, 0.1), (0.6, 0.2, 0.2), (0.5, 0.5, 0.0), (0.34, 0.33, 0.33)]))
def test_ratio_time_invariants(rows, ratios):
    users, items, times = map(np.array, zip(*rows))
    data = build_interactions(_frame(users, items, times), None, "generated")
    split = ratio_split(data, ratios, order="time")
    _check_partition(data, split)
    for user in range(data.num_users):
        parts = [part[data.user[part] == user] for part in (split.train, split.valid, split.test)]
        assert tuple(len(part) for part in parts) == _recbole_sizes(int(np.sum(data.user == user)), ratios)
        assert len(parts[0]) >= 1
        # Order respected: (time, item, row) of every train row precedes every valid row, and so on.
        keys = [sorted(zip(data.timestamp[part], data.item[part], part)) for part in parts]
        nonempty = [key for key in keys if key]
        for earlier, later in zip(nonempty, nonempty[1:]):
            assert earlier[-1] < later[0]


@settings(max_examples=40, deadline=None)
@given(rows_strategy, st.integers(0, 1000))
def test_ratio_random_seeded_and_sized(rows, seed):
    users, items, times = map(np.array, zip(*rows))
    data = build_interactions(_frame(users, items, times), None, "generated")
    split = ratio_split(data, (0.8, 0.1, 0.1), order="random", seed=seed)
    again = ratio_split(data, (0.8, 0.1, 0.1), order="random", seed=seed)
    _check_partition(data, split)
    for first, second in zip((split.train, split.valid, split.test), (again.train, again.valid, again.test)):
        assert np.array_equal(first, second)
    for user in range(data.num_users):
        sizes = tuple(int(np.sum(data.user[part] == user)) for part in (split.train, split.valid, split.test))
        assert sizes == _recbole_sizes(int(np.sum(data.user == user)), (0.8, 0.1, 0.1))


@settings(max_examples=60, deadline=None)
@given(rows_strategy, st.sampled_from([(0.8, 0.1, 0.1), (0.5, 0.25, 0.25)]))
def test_time_cut_invariants(rows, ratios):
    users, items, times = map(np.array, zip(*rows))
    data = build_interactions(_frame(users, items, times), None, "generated")
    split = time_cut_split(data, ratios)
    _check_partition(data, split)
    train, valid, test = (data.timestamp[part] for part in (split.train, split.valid, split.test))
    if len(train) and len(valid):
        assert train.max() < valid.min()
    if len(valid) and len(test):
        assert valid.max() < test.min()
    if len(train) and len(test):
        assert train.max() < test.min()


def test_time_cut_explicit_times_and_ties():
    # Times 1..6; the cut [3, 5] puts both rows at time 3 into validation.
    data = build_interactions(_frame([1, 1, 2, 2, 2, 1, 2], [1, 2, 1, 2, 3, 3, 4], [1, 2, 3, 3, 4, 5, 6]), None, "t")
    split = time_cut_split(data, cut_times=[3, 5])
    assert data.timestamp[split.train].tolist() == [1, 2]
    assert sorted(data.timestamp[split.valid].tolist()) == [3, 3, 4]
    assert sorted(data.timestamp[split.test].tolist()) == [5, 6]
    with pytest.raises(ValueError, match="t_valid must not be after t_test"):
        time_cut_split(data, cut_times=[5, 3])


def test_time_cut_cold_users():
    # User 9 appears only after the cut: error by default, dropped on request.
    data = build_interactions(_frame([1, 1, 1, 2, 2, 9], [1, 2, 3, 1, 2, 3], [1, 2, 5, 3, 6, 7]), None, "log.csv")
    cfg = OmegaConf.structured(DataConfig(split="time_cut", split_cut_times=[4, 6]))
    with pytest.raises(DataFormatError, match=r"log.csv: data.split=time_cut leaves 1 user.*user id 9.*data.cold_users=drop"):
        make_split(data, cfg, "log.csv")
    cfg.cold_users = "drop"
    split = make_split(data, cfg, "log.csv")
    assert 9 not in data.user_ids[data.user[np.concatenate([split.valid, split.test])]].tolist()
    assert len(split.test) == 1


def test_bad_ratios_rejected():
    data = build_interactions(_frame([1, 1], [1, 2], [1, 2]), None, "t")
    with pytest.raises(ValueError, match="data.split_ratios"):
        ratio_split(data, (0.0, 0.5, 0.5))
