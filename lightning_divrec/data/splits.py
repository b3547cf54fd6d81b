"""Train/validation/test splits of an ``Interactions`` table.

Each split returns three index arrays into the interaction table. Every
split is deterministic: ``leave_one_out``, ``ratio_split(order="time")`` and
``time_cut_split`` have no randomness at all, and the random splits depend
only on their seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lightning_divrec.data.interactions import Interactions


@dataclass
class Split:
    """Indices of the interactions in each part."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray


def leave_one_out(data: Interactions) -> Split:
    """Hold out each user's last interaction for test and the one before for validation.

    Interactions are ordered per user by timestamp. Ties in time are broken by
    the item's contiguous index (ascending), so the result does not depend on
    the row order of the source file. Users with fewer than 3 interactions keep
    all of them in training and are not evaluated.
    """
    order = np.lexsort((data.item, data.timestamp, data.user))
    position, count = _position_in_group(data.user[order])
    evaluated = count >= 3
    is_test = evaluated & (position == count - 1)
    is_valid = evaluated & (position == count - 2)
    return Split(
        train=np.sort(order[~(is_test | is_valid)]),
        valid=np.sort(order[is_valid]),
        test=np.sort(order[is_test]),
    )


def random_ratio_split(data: Interactions, ratios=(0.8, 0.1, 0.1), seed: int = 2020) -> Split:
    """Shuffle all interactions, then split each user's interactions by ``ratios``.

    The part sizes follow RecBole 1.2.1 (``Dataset._calcu_split_ids``): each
    of the validation and test parts gets ``floor(ratio * n)``; training gets
    the rest. A part whose share is between 0 and 1 interaction still gets one,
    test first, as long as training keeps more than one.
    """
    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(len(data))
    order = shuffled[np.argsort(data.user[shuffled], kind="stable")]
    return _split_ordered(order, data.user[order], ratios)


def ratio_split(data: Interactions, ratios=(0.8, 0.1, 0.1), order: str = "time", seed: int = 2020) -> Split:
    """Split each user's interactions by ``ratios``, ordered by time or shuffled.

    ``order="time"``: each user's interactions sorted by timestamp, ties
    broken by item index and then by row, so the earliest go to training
    and the latest to test. ``order="random"``: the same shuffle-then-cut
    rule as ``random_ratio_split`` (RecBole's part sizes) with this seed.
    Part sizes follow ``random_ratio_split`` in both cases.
    """
    if order == "random":
        return random_ratio_split(data, ratios, seed)
    if order != "time":
        raise ValueError(f"order={order!r}: choose time or random")
    _check_ratios(ratios)
    ordered = np.lexsort((np.arange(len(data)), data.item, data.timestamp, data.user))
    return _split_ordered(ordered, data.user[ordered], ratios)


def time_cut_split(data: Interactions, ratios=(0.8, 0.1, 0.1), cut_times=None) -> Split:
    """Split all interactions at two global times: train before t_valid, validation before t_test, test after.

    ``cut_times`` gives ``[t_valid, t_test]`` in the data's time unit. When it
    is None both are derived from ``ratios``: t_valid is the timestamp of the
    interaction at position ``floor(train_share * N)`` of the time order, and
    t_test that at ``floor((train_share + valid_share) * N)``. Interactions at
    the same time always fall into the same part, so the parts can be a few
    interactions larger or smaller than the shares.
    """
    if cut_times is None:
        shares = _check_ratios(ratios)
        times = np.sort(data.timestamp)
        boundaries = np.floor(np.cumsum(shares[:2]) * len(data)).astype(np.int64).clip(max=len(data) - 1)
        t_valid, t_test = (int(times[index]) for index in boundaries)
    else:
        t_valid, t_test = (int(value) for value in cut_times)
        if t_valid > t_test:
            raise ValueError(f"data.split_cut_times={list(cut_times)}: t_valid must not be after t_test")
    is_train = data.timestamp < t_valid
    is_test = data.timestamp >= t_test
    is_valid = ~is_train & ~is_test
    return Split(
        train=np.flatnonzero(is_train),
        valid=np.flatnonzero(is_valid),
        test=np.flatnonzero(is_test),
    )


def _check_ratios(ratios) -> np.ndarray:
    shares = np.asarray(ratios, dtype=np.float64)
    if shares.shape != (3,) or np.any(shares < 0) or shares.sum() <= 0 or shares[0] <= 0:
        raise ValueError(
            f"data.split_ratios={list(ratios)}: give three non-negative shares (train, validation, test) "
            "with a positive training share, for example [0.8, 0.1, 0.1]"
        )
    return shares / shares.sum()


def _split_ordered(order: np.ndarray, sorted_users: np.ndarray, ratios) -> Split:
    """Cut each user's run of ``order`` (grouped by user) into train, validation and test by RecBole's sizes."""
    train_ratio, valid_ratio, test_ratio = _check_ratios(ratios)
    position, count = _position_in_group(sorted_users)

    count = count.astype(np.float64)
    valid_size = np.floor(valid_ratio * count)
    test_size = np.floor(test_ratio * count)
    train_size = count - valid_size - test_size
    for size, ratio in ((test_size, test_ratio), (valid_size, valid_ratio)):
        bump = (train_size > 1) & (ratio * count > 0) & (ratio * count < 1)
        size += bump
        train_size -= bump

    is_train = position < train_size
    is_valid = ~is_train & (position < train_size + valid_size)
    is_test = ~is_train & ~is_valid
    return Split(
        train=np.sort(order[is_train]),
        valid=np.sort(order[is_valid]),
        test=np.sort(order[is_test]),
    )


def _position_in_group(sorted_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return each row's 0-based position within its run of equal keys, and the run length."""
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    lengths = np.diff(np.r_[starts, len(sorted_keys)])
    group_start = np.repeat(starts, lengths)
    position = np.arange(len(sorted_keys)) - group_start
    return position, np.repeat(lengths, lengths)
