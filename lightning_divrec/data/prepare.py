"""From a configured source to split interactions: read, preprocess, number, split, check.

Shapes: N interactions, U users.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from lightning_divrec.data.interactions import Interactions, build_interactions
from lightning_divrec.data.preprocess import preprocess
from lightning_divrec.data.sources.common import DataFormatError
from lightning_divrec.data.sources.registry import read_source
from lightning_divrec.data.splits import Split, leave_one_out, random_ratio_split, ratio_split, time_cut_split

log = logging.getLogger(__name__)


@dataclass
class PreparedData:
    """A preprocessed dataset and its split, as the data module consumes it."""

    interactions: Interactions
    split: Split
    origin: str
    """File (or generator) that error messages name."""
    description: str
    """One line for the log: format and files."""


def build_prepared(config: Any) -> PreparedData:
    """Read the source of ``config`` (the ``data`` group), preprocess, number and split it."""
    tables = read_source(config)
    frame = preprocess(tables.interactions, config, tables.origin)
    data = build_interactions(frame, tables.items, tables.origin)
    split = make_split(data, config, tables.origin)
    return PreparedData(data, split, tables.origin, tables.description)


def make_split(data: Interactions, config: Any, origin: str) -> Split:
    """Split by ``data.split``, apply ``data.cold_users`` and check that both held-out parts are non-empty."""
    name = config.split
    if name == "loo":
        split = leave_one_out(data)
    elif name == "random_811":
        split = random_ratio_split(data, seed=config.split_seed)
    elif name in ("ratio_time", "ratio_random"):
        split = ratio_split(data, tuple(config.split_ratios), order=name.removeprefix("ratio_"), seed=config.split_seed)
    elif name == "time_cut":
        cut_times = list(config.split_cut_times) if config.split_cut_times is not None else None
        split = time_cut_split(data, tuple(config.split_ratios), cut_times)
    else:
        raise ValueError(f"data.split={name!r} is not a known split")
    split = handle_cold_users(data, split, config, origin)

    for part, size in (("validation", len(split.valid)), ("test", len(split.test))):
        if size == 0:
            raise DataFormatError(
                f"{origin}: data.split={name} leaves no {part} interaction, so there "
                "is nothing to evaluate. Both splits give a user validation and test items only from "
                "3 interactions on; use a larger dataset or lower data.rating_threshold"
            )
    return split


def handle_cold_users(data: Interactions, split: Split, config: Any, origin: str) -> Split:
    """Raise or drop held-out interactions of users without any training interaction.

    Only ``time_cut`` can produce such users: the per-user splits always keep
    at least one training interaction for every user.
    """
    has_train = np.zeros(data.num_users, dtype=bool)  # [U]
    has_train[data.user[split.train]] = True
    cold_valid = ~has_train[data.user[split.valid]]
    cold_test = ~has_train[data.user[split.test]]
    if not (cold_valid.any() or cold_test.any()):
        return split
    cold_users = np.unique(np.concatenate([data.user[split.valid][cold_valid], data.user[split.test][cold_test]]))
    if config.cold_users == "error":
        raise DataFormatError(
            f"{origin}: data.split={config.split} leaves {len(cold_users)} user(s) with validation or test "
            f"interactions but none in training, for example user id {data.user_ids[cold_users[0]].item()!r}. "
            "Set data.cold_users=drop to leave them out of evaluation, move the cut times later, or use "
            "a per-user split (loo, ratio_time)"
        )
    log.info("cold_users=drop: removed %d held-out interactions of %d users without training data",
             int(cold_valid.sum() + cold_test.sum()), len(cold_users))
    return Split(train=split.train, valid=split.valid[~cold_valid], test=split.test[~cold_test])
