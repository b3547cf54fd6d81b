"""Top-K ranking shared by every metric: computed once per batch, read by all.

Legend: B users in the batch, I items, K cut-off.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


def topk_indices(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Return the indices of the ``k`` highest scores per row, best first.

    Tie rule: equal scores are ordered by ascending item index, so the result
    is deterministic on every device. ``-inf`` marks an excluded item; it can
    still fill a list when fewer than ``k`` items remain (see ``RankedLists.valid``).

    Shapes: scores [B, I] -> [B, min(k, I)].
    """
    k = min(k, scores.shape[1])
    values, indices = torch.topk(scores, k, dim=1)
    threshold = values[:, -1:]
    # Rows where items outside the top-k tie with the k-th score need the
    # exact rule; elsewhere only the order inside the top-k may need fixing.
    ties_at_boundary = (scores == threshold).sum(dim=1) != (values == threshold).sum(dim=1)
    if ties_at_boundary.any():
        rows = torch.nonzero(ties_at_boundary).flatten()
        order = torch.sort(scores[rows], dim=1, descending=True, stable=True).indices[:, :k]
        indices = indices.clone()
        indices[rows] = order
        values = torch.gather(scores, 1, indices)
    # Sort the k entries by index, then stably by score: equal scores end up in index order.
    by_index = torch.sort(indices, dim=1).indices
    indices = torch.gather(indices, 1, by_index)
    values = torch.gather(values, 1, by_index)
    by_score = torch.sort(values, dim=1, descending=True, stable=True).indices
    return torch.gather(indices, 1, by_score)


@dataclass
class RankedLists:
    """The top-K lists of a batch with their relevance, the input of every metric.

    Build it with ``RankedLists.from_scores``.
    """

    items: torch.Tensor
    """[B, K] item index at each rank."""
    valid: torch.Tensor
    """[B, K] bool, False where the rank is filled by an excluded (``-inf``) item."""
    gains: torch.Tensor
    """[B, K] relevance of the item at each rank (0 where not relevant or not valid)."""
    ideal_gains: torch.Tensor
    """[B, K] the K largest relevance values over all held-out items, descending."""
    num_relevant: torch.Tensor
    """[B] number of held-out items with relevance > 0."""
    num_rankable: torch.Tensor
    """[B] items that were not excluded, the longest possible list."""
    extras: dict[str, torch.Tensor] = field(default_factory=dict)
    """Per-user pieces that some metrics share, each with B rows: ``auc`` [B],
    ``target_items`` [B, T] with ``target_valid`` [B, T], ``history`` [B, C]."""

    @property
    def k(self) -> int:
        return self.items.shape[1]

    @classmethod
    def from_scores(cls, scores: torch.Tensor, target: torch.Tensor, k: int) -> "RankedLists":
        """Rank ``scores`` [B, I] and look up ``target`` [B, I] (bool or graded float) along the lists."""
        if scores.shape != target.shape:
            raise ValueError(f"scores {tuple(scores.shape)} and target {tuple(target.shape)} must have the same shape")
        if torch.isnan(scores).any():
            raise ValueError("scores contain NaN; check the model for a numerical overflow")
        target = target.to(torch.float64) if target.dtype == torch.bool else target.double()
        items = topk_indices(scores, k)
        valid = torch.isfinite(torch.gather(scores, 1, items)) | (torch.gather(scores, 1, items) > 0)
        gains = torch.gather(target, 1, items) * valid
        ideal_gains = torch.topk(target, items.shape[1], dim=1).values.clamp_min(0)
        return cls(
            items=items,
            valid=valid,
            gains=gains,
            ideal_gains=ideal_gains,
            num_relevant=(target > 0).sum(dim=1),
            num_rankable=(scores > float("-inf")).sum(dim=1),
        )

    def truncate(self, k: int) -> "RankedLists":
        """Return the same lists cut at ``k`` (ideal gains cut too)."""
        return RankedLists(
            items=self.items[:, :k],
            valid=self.valid[:, :k],
            gains=self.gains[:, :k],
            ideal_gains=self.ideal_gains[:, :k],
            num_relevant=self.num_relevant,
            num_rankable=self.num_rankable,
            extras=self.extras,
        )

    def select(self, rows: torch.Tensor) -> "RankedLists":
        """Return the lists of the rows where the bool mask ``rows`` [B] is True."""
        tensors = {name: getattr(self, name)[rows] for name in self.__dataclass_fields__ if name != "extras"}
        return RankedLists(**tensors, extras={name: value[rows] for name, value in self.extras.items()})
