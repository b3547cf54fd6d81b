"""Per-user item sequences in time order, for models that read histories as sequences.

Items keep their contiguous ids ``0..I-1``. The padding id is ``I`` (the
number of items), so an embedding table for sequences has ``I + 1`` rows and
``padding_idx=I``. Sequences are left-padded: the most recent item is always
in the last column.

Order within a user is by timestamp, ties broken by item index (ascending),
the same rule as ``lightning_divrec.data.splits.leave_one_out``.

Legend: U users, I items, N interactions, W training windows, L ``max_length``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from lightning_divrec.data.interactions import Interactions
from lightning_divrec.data.splits import Split


@dataclass
class UserSequences:
    """Each user's items in time order, in compressed sparse row form."""

    indptr: np.ndarray
    """[U + 1] int64; user u's items are ``items[indptr[u]:indptr[u + 1]]``."""
    items: np.ndarray
    """[N] int64 item ids, oldest first within each user."""

    @property
    def num_users(self) -> int:
        return len(self.indptr) - 1


def order_by_time(user: np.ndarray, item: np.ndarray, timestamp: np.ndarray, num_users: int) -> UserSequences:
    """Group interactions by user and order each group by (timestamp, item).

    Shapes: [N], [N], [N] -> ``UserSequences`` over U users.
    """
    order = np.lexsort((item, timestamp, user))
    indptr = np.zeros(num_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(user, minlength=num_users), out=indptr[1:])
    return UserSequences(indptr=indptr, items=item[order].astype(np.int64))


def gather_left_padded(items: np.ndarray, starts: np.ndarray, ends: np.ndarray, length: int, padding_id: int) -> np.ndarray:
    """Return rows ``items[max(start, end - length):end]``, left-padded with ``padding_id`` to ``length``.

    Shapes: items [N]; starts, ends [R] -> [R, length].
    """
    index = ends[:, None] - length + np.arange(length)[None, :]  # [R, length]
    valid = index >= starts[:, None]
    gathered = items[np.clip(index, 0, None)] if len(items) else np.zeros(index.shape, dtype=np.int64)
    return np.where(valid, gathered, padding_id)


def training_windows(
    sequences: UserSequences, max_length: int, padding_id: int, windows: Literal["last", "all"] = "all"
) -> tuple[np.ndarray, np.ndarray]:
    """Cut each user's sequence into next-item training windows.

    A window contains ``max_length + 1`` consecutive items; its input is the
    first ``max_length`` of them and its target at each position is the item
    that follows. ``windows="last"`` keeps one window per user, the most
    recent. ``windows="all"`` tiles the whole sequence backwards from its end
    with a stride of ``max_length``, so every item but the user's first is a
    target exactly once. Positions whose input is padding carry no target
    (the caller masks ``inputs == padding_id``). Users with fewer than 2 items
    give no window.

    Returns:
        ``(inputs, targets)``, both [W, max_length] int64.
    """
    if max_length < 1:
        raise ValueError(f"max_length={max_length} must be at least 1")
    if windows not in ("last", "all"):
        raise ValueError(f"windows={windows!r} is not one of 'last', 'all'")
    starts, ends = sequences.indptr[:-1], sequences.indptr[1:]
    targets_per_user = np.maximum(ends - starts - 1, 0)
    if windows == "all":
        count = -(-targets_per_user // max_length)  # ceil division
    else:
        count = (targets_per_user > 0).astype(np.int64)
    user_of_window = np.repeat(np.arange(sequences.num_users), count)  # [W]
    # Window w of a user (w = 0 is the most recent) ends w * max_length items before the user's end.
    first_window = np.cumsum(count) - count
    back = np.arange(count.sum()) - np.repeat(first_window, count)
    window_ends = ends[user_of_window] - back * max_length
    rows = gather_left_padded(sequences.items, starts[user_of_window], window_ends, max_length + 1, padding_id)
    return rows[:, :-1], rows[:, 1:]


def history_matrix(sequences: UserSequences, max_length: int, padding_id: int) -> np.ndarray:
    """Return each user's last ``max_length`` items, left-padded; a user without items is all padding.

    Shape: -> [U, max_length] int64.
    """
    return gather_left_padded(sequences.items, sequences.indptr[:-1], sequences.indptr[1:], max_length, padding_id)


class SequenceWindows(Dataset):
    """Training windows; a batch is ``{"inputs": [B, L], "targets": [B, L]}`` of item ids."""

    def __init__(self, inputs: np.ndarray, targets: np.ndarray):
        self.inputs = torch.from_numpy(np.ascontiguousarray(inputs))
        self.targets = torch.from_numpy(np.ascontiguousarray(targets))

    def __len__(self) -> int:
        return len(self.inputs)

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        index = torch.as_tensor(indices, dtype=torch.long)
        return {"inputs": self.inputs[index], "targets": self.targets[index]}

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"inputs": self.inputs[index], "targets": self.targets[index]}


@dataclass
class SequenceData:
    """Training windows and scoring histories of a sequence model."""

    padding_id: int
    """Padding item id, equal to the number of items I."""
    max_length: int
    """L: columns of every window and history."""
    train: SequenceWindows
    """Next-item windows over training interactions only."""
    histories: dict[str, torch.Tensor]
    """Per stage, [U, L] int64 history up to the evaluation point: ``val``
    reads training items, ``test`` training plus validation items."""


def build_sequence_data(
    data: Interactions, split: Split, max_length: int, windows: Literal["last", "all"] = "all"
) -> SequenceData:
    """Build training windows from ``split.train`` and the val/test scoring histories.

    Validation and test interactions never enter a training window. Under a
    random split a user's validation items can be older than some training
    items; the test history then still orders them by time.
    """
    padding_id = data.num_items
    train_sequences = order_by_time(data.user[split.train], data.item[split.train], data.timestamp[split.train], data.num_users)
    inputs, targets = training_windows(train_sequences, max_length, padding_id, windows)
    seen = np.concatenate([split.train, split.valid])
    test_sequences = order_by_time(data.user[seen], data.item[seen], data.timestamp[seen], data.num_users)
    histories = {
        "val": torch.from_numpy(history_matrix(train_sequences, max_length, padding_id)),
        "test": torch.from_numpy(history_matrix(test_sequences, max_length, padding_id)),
    }
    return SequenceData(
        padding_id=padding_id, max_length=max_length, train=SequenceWindows(inputs, targets), histories=histories
    )
