"""Sequence batches: time order, left-padded training windows, scoring histories without leakage."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from omegaconf import OmegaConf

from lightning_divrec.config import DataConfig
from lightning_divrec.data import RecDataModule
from lightning_divrec.data.sequences import build_sequence_data, history_matrix, order_by_time, training_windows

PAD = 99


def _toy_sequences():
    # user 0: items 5, 3, 4 at times 3, 1, 1 -> order 3, 4 (tie by item), 5
    # user 1: items 1, 2, 3, 4, 0 at times 1..5
    # user 2: one item; user 3: none
    user = np.array([0, 0, 0, 1, 1, 1, 1, 1, 2])
    item = np.array([5, 3, 4, 1, 2, 3, 4, 0, 7])
    timestamp = np.array([3, 1, 1, 1, 2, 3, 4, 5, 0])
    return order_by_time(user, item, timestamp, num_users=4)


def test_order_by_time_breaks_ties_by_item():
    sequences = _toy_sequences()
    assert sequences.indptr.tolist() == [0, 3, 8, 9, 9]
    assert sequences.items[0:3].tolist() == [3, 4, 5]
    assert sequences.items[3:8].tolist() == [1, 2, 3, 4, 0]


def test_all_windows_cover_each_target_once():
    inputs, targets = training_windows(_toy_sequences(), max_length=2, padding_id=PAD, windows="all")
    assert inputs.shape == targets.shape == (3, 2)
    rows = {(tuple(a), tuple(b)) for a, b in zip(inputs.tolist(), targets.tolist())}
    assert rows == {((3, 4), (4, 5)), ((3, 4), (4, 0)), ((1, 2), (2, 3))}
    real_targets = targets[inputs != PAD]
    # Every item but each user's first is a target exactly once.
    assert Counter(real_targets.tolist()) == Counter([4, 5, 2, 3, 4, 0])


def test_windows_are_left_padded():
    inputs, targets = training_windows(_toy_sequences(), max_length=4, padding_id=PAD, windows="all")
    assert inputs.tolist() == [[PAD, PAD, 3, 4], [1, 2, 3, 4]]
    assert targets.tolist() == [[PAD, 3, 4, 5], [2, 3, 4, 0]]


def test_last_window_only_per_user():
    inputs, targets = training_windows(_toy_sequences(), max_length=2, padding_id=PAD, windows="last")
    assert inputs.tolist() == [[3, 4], [3, 4]]
    assert targets.tolist() == [[4, 5], [4, 0]]


def test_window_options_rejected():
    with pytest.raises(ValueError, match="max_length=0"):
        training_windows(_toy_sequences(), max_length=0, padding_id=PAD)
    with pytest.raises(ValueError, match="windows='every'"):
        training_windows(_toy_sequences(), max_length=2, padding_id=PAD, windows="every")


def test_history_keeps_most_recent_items():
    history = history_matrix(_toy_sequences(), max_length=3, padding_id=PAD)
    assert history.tolist() == [[3, 4, 5], [3, 4, 0], [PAD, PAD, 7], [PAD, PAD, PAD]]


@pytest.fixture
def tiny_datamodule(tiny_ml100k):
    config = OmegaConf.merge(OmegaConf.structured(DataConfig), {"path": str(tiny_ml100k)})
    datamodule = RecDataModule(config)
    datamodule.setup("fit")
    return datamodule


def _user_items_in_time_order(datamodule, index: np.ndarray) -> dict[int, list[int]]:
    """Independent reference: sort each user's rows with a plain Python key."""
    data = datamodule.interactions
    rows = sorted(index.tolist(), key=lambda row: (data.user[row], data.timestamp[row], data.item[row]))
    result: dict[int, list[int]] = {}
    for row in rows:
        result.setdefault(int(data.user[row]), []).append(int(data.item[row]))
    return result


def test_training_windows_hold_only_training_items(tiny_datamodule):
    datamodule = tiny_datamodule
    split = datamodule.split
    sequences = build_sequence_data(datamodule.interactions, split, max_length=3)
    pad = datamodule.num_items
    train = _user_items_in_time_order(datamodule, split.train)
    inputs, targets = sequences.train.inputs.numpy(), sequences.train.targets.numpy()
    expected_targets = Counter(item for items in train.values() for item in items[1:])
    assert Counter(targets[inputs != pad].tolist()) == expected_targets
    # Every window is a run of consecutive training items of one user, and a
    # padded window starts at that user's first item.
    full_runs = {tuple(items[a:a + 4]) for items in train.values() for a in range(len(items) - 3)}
    prefixes = {tuple(items[:b]) for items in train.values() for b in range(1, min(len(items), 4) + 1)}
    for window_inputs, window_targets in zip(inputs.tolist(), targets.tolist()):
        window = tuple(item for item in window_inputs + window_targets[-1:] if item != pad)
        assert window in (full_runs if len(window) == 4 else prefixes), window


def test_histories_stop_at_evaluation_point(tiny_datamodule):
    datamodule = tiny_datamodule
    split, data = datamodule.split, datamodule.interactions
    length = 4
    sequences = build_sequence_data(data, split, max_length=length)
    pad = datamodule.num_items
    train = _user_items_in_time_order(datamodule, split.train)
    seen = _user_items_in_time_order(datamodule, np.concatenate([split.train, split.valid]))
    valid_item = {int(data.user[row]): int(data.item[row]) for row in split.valid}
    test_item = {int(data.user[row]): int(data.item[row]) for row in split.test}
    for user in range(datamodule.num_users):
        val_row = [item for item in sequences.histories["val"][user].tolist() if item != pad]
        test_row = [item for item in sequences.histories["test"][user].tolist() if item != pad]
        assert val_row == train.get(user, [])[-length:]
        assert test_row == seen.get(user, [])[-length:]
        if user in valid_item:
            assert test_row[-1] == valid_item[user]
            assert valid_item[user] not in val_row
        if user in test_item:
            assert test_item[user] not in test_row
