"""Train/validation/test splits of an ``Interactions`` table.

Each split returns three index arrays into the interaction table. Both
splits are deterministic: ``leave_one_out`` has no randomness at all, and
``random_ratio_split`` depends only on its seed.
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


def random_ratio_split(
    data: Interactions, ratios=(0.8, 0.1, 0.1), seed: int = 2020, permutation: np.ndarray | None = None
) -> Split:
    """Shuffle all interactions, then split each user's interactions by ``ratios``.

    ``permutation`` [N], when given, replaces the shuffle drawn from ``seed``.
    RecBole 1.2.1 shuffles with ``torch.manual_seed(seed)`` followed by
    ``torch.randperm(N)``; passing that permutation reproduces its split.

    The part sizes follow RecBole 1.2.1 (``Dataset._calcu_split_ids``): each
    of the validation and test parts gets ``floor(ratio * n)``; training gets
    the rest. A part whose share is between 0 and 1 interaction still gets one,
    test first, as long as training keeps more than one.
    """
    total = sum(ratios)
    train_ratio, valid_ratio, test_ratio = (ratio / total for ratio in ratios)
    if permutation is None:
        shuffled = np.random.default_rng(seed).permutation(len(data))
    else:
        shuffled = np.asarray(permutation, dtype=np.int64)
        if shuffled.shape != (len(data),) or not np.array_equal(np.sort(shuffled), np.arange(len(data))):
            raise ValueError(f"permutation must hold each of 0..{len(data) - 1} exactly once")
    order = shuffled[np.argsort(data.user[shuffled], kind="stable")]
    position, count = _position_in_group(data.user[order])

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
