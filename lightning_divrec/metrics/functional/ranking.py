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
    # One extra candidate shows whether an item outside the top-k ties with the k-th score.
    values, indices = torch.topk(scores, min(k + 1, scores.shape[1]), dim=1)
    if values.shape[1] > k:
        ties_at_boundary = values[:, k] == values[:, k - 1]
    else:
        ties_at_boundary = torch.zeros(scores.shape[0], dtype=torch.bool, device=scores.device)
    values, indices = values[:, :k], indices[:, :k]
    # Rows with a tie at the boundary need the exact rule; elsewhere only the
    # order inside the top-k may need fixing.
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
    ``target_items`` [B, T] with ``target_valid`` [B, T], ``history`` [B, C],
    ``alpha_ideal_dcg`` [B, K] (the greedy ideal alpha-DCG at each cut-off)."""

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
        items = topk_indices(scores, k)
        listed_scores = torch.gather(scores, 1, items)
        valid = listed_scores > float("-inf")
        gains = torch.gather(target, 1, items).double() * valid
        target_items, target_valid = held_out_items(target)
        num_relevant = target_valid.sum(dim=1)
        if target.dtype == torch.bool:
            # Binary relevance: the ideal list is min(K, held-out) ones, no sort needed.
            ranks = torch.arange(items.shape[1], device=items.device)
            ideal_gains = (ranks.unsqueeze(0) < num_relevant.unsqueeze(1)).double()
        else:
            ideal_gains = torch.topk(target.double(), items.shape[1], dim=1).values.clamp_min(0)
        return cls(
            items=items,
            valid=valid,
            gains=gains,
            ideal_gains=ideal_gains,
            num_relevant=num_relevant,
            num_rankable=(scores > float("-inf")).sum(dim=1, dtype=torch.int32).long(),
            extras={"target_items": target_items, "target_valid": target_valid},
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


def held_out_items(target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return each user's held-out items packed to the left, [B, I] -> items [B, T] and valid [B, T].

    T is the largest held-out count in the batch (at least 1); padding slots
    have item 0 and ``valid`` False. Items keep ascending index order.
    """
    rows, columns = torch.nonzero(target > 0, as_tuple=True)  # row-major, so columns ascend per row
    counts = torch.bincount(rows, minlength=target.shape[0])
    width = max(int(counts.max()) if counts.numel() else 0, 1)
    starts = torch.cumsum(counts, dim=0) - counts
    slots = torch.arange(len(rows), device=target.device) - starts[rows]
    items = torch.zeros(target.shape[0], width, dtype=torch.long, device=target.device)
    valid = torch.zeros(target.shape[0], width, dtype=torch.bool, device=target.device)
    items[rows, slots] = columns
    valid[rows, slots] = True
    return items, valid
