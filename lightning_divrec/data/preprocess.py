"""Preprocessing of a raw interaction frame: rating threshold, duplicates, k-core.

Shapes: N interactions. Every step is vectorised over the whole frame (no
per-user Python loop) and keeps the surviving rows in their file order, so a
step that removes nothing returns the frame unchanged.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from lightning_divrec.data.sources.common import DataFormatError

log = logging.getLogger(__name__)


def preprocess(frame: pd.DataFrame, config: Any, origin: str) -> pd.DataFrame:
    """Apply ``data.rating_threshold``, ``data.duplicates`` and the k-core, in that order.

    Raises ``DataFormatError`` naming ``origin`` and the setting to change
    when no interaction is left.
    """
    steps = []
    if config.rating_threshold is not None:
        frame = frame[frame["rating"].to_numpy() >= config.rating_threshold]
        steps.append(f"data.rating_threshold={config.rating_threshold}")
        _require_rows(frame, origin, steps)
    if config.duplicates != "keep":
        before = len(frame)
        frame = apply_duplicate_policy(frame, config.duplicates)
        steps.append(f"data.duplicates={config.duplicates}")
        log.info("duplicates=%s removed %d of %d interactions", config.duplicates, before - len(frame), before)
    if config.min_user_interactions > 1 or config.min_item_interactions > 1:
        before = len(frame)
        frame = k_core(frame, config.min_user_interactions, config.min_item_interactions)
        steps.append(
            f"data.min_user_interactions={config.min_user_interactions} "
            f"data.min_item_interactions={config.min_item_interactions}"
        )
        log.info("k-core removed %d of %d interactions", before - len(frame), before)
    _require_rows(frame, origin, steps)
    return frame


def _require_rows(frame: pd.DataFrame, origin: str, steps: list[str]) -> None:
    if len(frame) == 0:
        raise DataFormatError(
            f"{origin}: no interactions left"
            + (f" after {', '.join(steps)}; relax those settings" if steps else "")
        )


def _codes(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(user_code, item_code)``: [N] int64 codes 0..U-1 and 0..I-1 in order of appearance."""
    user_code = pd.factorize(frame["user"])[0].astype(np.int64)
    item_code = pd.factorize(frame["item"])[0].astype(np.int64)
    return user_code, item_code


def apply_duplicate_policy(frame: pd.DataFrame, policy: str) -> pd.DataFrame:
    """Resolve repeated (user, item) pairs.

    ``first`` and ``last`` keep one row per pair: the earliest or latest by
    timestamp, ties broken by file order (the earlier row counts as first).
    ``drop`` removes every row of a pair that occurs more than once. ``keep``
    returns the frame as it is.
    """
    if policy == "keep":
        return frame
    if policy not in ("first", "last", "drop"):
        raise ValueError(f"data.duplicates={policy!r}: choose keep, first, last or drop")
    user_code, item_code = _codes(frame)
    pair = user_code * (int(item_code.max()) + 1) + item_code  # [N]
    # np.lexsort is stable, so rows with equal pair and time stay in file order.
    order = np.lexsort((frame["timestamp"].to_numpy(), pair))
    sorted_pair = pair[order]
    change = sorted_pair[1:] != sorted_pair[:-1]
    starts = np.r_[True, change]
    ends = np.r_[change, True]
    selected = {"first": starts, "last": ends, "drop": starts & ends}[policy]
    return frame.iloc[np.sort(order[selected])]


def k_core(frame: pd.DataFrame, min_user: int, min_item: int) -> pd.DataFrame:
    """Repeatedly remove users with < ``min_user`` and items with < ``min_item`` interactions.

    Removing an item can push a user below its threshold and the reverse, so
    the two filters alternate until neither removes anything. Interactions are
    counted with repeats (a pair seen twice counts twice); apply
    ``data.duplicates`` first to count distinct items.
    """
    user_code, item_code = _codes(frame)
    num_users, num_items = int(user_code.max()) + 1, int(item_code.max()) + 1
    keep = np.ones(len(frame), dtype=bool)
    while True:
        user_count = np.bincount(user_code[keep], minlength=num_users)  # [U]
        item_count = np.bincount(item_code[keep], minlength=num_items)  # [I]
        remove = keep & ((user_count[user_code] < min_user) | (item_count[item_code] < min_item))
        if not remove.any():
            break
        keep &= ~remove
    return frame[keep]
