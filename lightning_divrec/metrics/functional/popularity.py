"""Popularity-aware metrics of each list: novelty, serendipity, long-tail share, average popularity.

Legend: B users, K list length, I items.
"""

from __future__ import annotations

import torch


def self_information(item_counts: torch.Tensor, total: int) -> torch.Tensor:
    """Return -log2 p(i) in bits per item, p(i) = item_counts[i] / total.

    An item with count 0 is treated as having count 1, which keeps its
    novelty finite at log2(total). Shapes: [I] -> [I].
    """
    share = item_counts.double().clamp_min(1) / max(total, 1)
    return -torch.log2(share)


def mean_over_list(item_values: torch.Tensor, items: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Return the mean of a per-item value over the valid items of each list; NaN for an empty list.

    Shapes: item_values [I], items [B, K], valid [B, K] -> [B].
    """
    values = item_values[items].double() * valid
    count = valid.sum(dim=1).double()
    return torch.where(count > 0, values.sum(dim=1) / count.clamp_min(1), torch.full_like(count, float("nan")))


def head_items(item_counts: torch.Tensor, head_fraction: float) -> torch.Tensor:
    """Return a bool mask [I] of the ceil(head_fraction * I) most popular items, ties by lower index."""
    size = int(torch.ceil(torch.tensor(head_fraction * item_counts.numel())).item())
    order = torch.sort(item_counts, descending=True, stable=True).indices
    mask = torch.zeros(item_counts.numel(), dtype=torch.bool, device=item_counts.device)
    mask[order[:size]] = True
    return mask


def serendipity(gains: torch.Tensor, items: torch.Tensor, valid: torch.Tensor, expected: torch.Tensor) -> torch.Tensor:
    """Return the share of list positions holding an item that is relevant and unexpected.

    ``expected`` [I] marks the items a primitive recommender would show
    (the K most popular). Divided by the list length K, as in Ge et al.,
    "Beyond accuracy", RecSys 2010. Shapes: gains, items, valid [B, K] -> [B].
    """
    surprising = (gains > 0) & valid & ~expected[items]
    return surprising.double().sum(dim=1) / items.shape[1]
