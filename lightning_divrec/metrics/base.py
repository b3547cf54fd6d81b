"""Base classes of the metric wrappers: sum states only, so DDP sync is exact and cheap."""

from __future__ import annotations

import torch
from torchmetrics import Metric

from lightning_divrec.metrics.functional.exposure import exposure_counts
from lightning_divrec.metrics.functional.ranking import RankedLists

EMPTY_TARGET_ACTIONS = ("skip", "zero", "one", "error")
"""Policies of a relevance metric for a user who has no held-out item:
``skip`` leaves the user out of the mean (default), ``zero`` and ``one``
count the user with that value, ``error`` raises ``ValueError``."""


def check_empty_target_action(action: str) -> str:
    if action not in EMPTY_TARGET_ACTIONS:
        raise ValueError(f"empty_target_action={action!r} is invalid; choose one of {', '.join(EMPTY_TARGET_ACTIONS)}")
    return action


class MeanOverUsers(Metric):
    """Mean over users of a per-user value computed on the top-``k`` list.

    States: ``total`` (float64 sum of values) and ``count`` (int64 users),
    both reduced by sum across processes. Subclasses implement ``per_user``,
    which returns NaN for a user whose value is undefined.

    Args:
        k: cut-off of the list.
        empty_target_action: see ``EMPTY_TARGET_ACTIONS``; applies to metrics
            with ``uses_targets = True``.
    """

    full_state_update = False
    is_differentiable = False
    higher_is_better = True
    uses_targets = True
    total: torch.Tensor
    count: torch.Tensor

    def __init__(self, k: int, empty_target_action: str = "skip", **kwargs):
        super().__init__(**kwargs)
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        self.k = k
        self.empty_target_action = check_empty_target_action(empty_target_action)
        self.add_state("total", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", torch.tensor(0, dtype=torch.int64), dist_reduce_fx="sum")

    def per_user(self, lists: RankedLists) -> torch.Tensor:
        raise NotImplementedError

    def update(self, lists: RankedLists) -> None:
        lists = lists.truncate(self.k)
        values = self.per_user(lists)
        if self.uses_targets:
            empty = lists.num_relevant == 0
            if empty.any():
                if self.empty_target_action == "error":
                    raise ValueError(
                        f"{int(empty.sum())} user(s) have no held-out item; set "
                        "empty_target_action to skip, zero or one to accept them"
                    )
                if self.empty_target_action in ("zero", "one"):
                    fill = 0.0 if self.empty_target_action == "zero" else 1.0
                    values = torch.where(empty, torch.full_like(values, fill), values)
        keep = ~torch.isnan(values)
        self.total += values[keep].sum()
        self.count += keep.sum()

    def compute(self) -> torch.Tensor:
        if self.count == 0:
            return torch.tensor(float("nan"), dtype=torch.float64, device=self.total.device)
        return self.total / self.count


class ExposureMetric(Metric):
    """A catalogue-level value computed from how often each item was recommended.

    State: ``counts`` [I] int64, reduced by sum across processes, so the value
    under DDP is that of the union of all lists and never an average of
    per-process values. Memory: one int64 per catalogue item.
    """

    full_state_update = False
    is_differentiable = False
    counts: torch.Tensor

    def __init__(self, k: int, num_items: int, **kwargs):
        super().__init__(**kwargs)
        self.k = k
        self.num_items = num_items
        self.add_state("counts", torch.zeros(num_items, dtype=torch.int64), dist_reduce_fx="sum")

    def update(self, lists: RankedLists) -> None:
        lists = lists.truncate(self.k)
        self.counts += exposure_counts(lists.items, lists.valid, self.num_items)
