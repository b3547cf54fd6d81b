"""Catalogue-level metrics computed from how often each item was recommended.

Every function here takes exposure counts [I] summed over all lists, so under
DDP they are computed once from the summed counts of all processes.
"""

from __future__ import annotations

import torch


def exposure_counts(items: torch.Tensor, valid: torch.Tensor, num_items: int) -> torch.Tensor:
    """Return how often each item appears in the valid part of the lists, [B, K] -> [I] int64."""
    return torch.bincount(items[valid], minlength=num_items)


def catalog_coverage(counts: torch.Tensor) -> torch.Tensor:
    """Return the share of the catalogue recommended at least once."""
    return (counts > 0).double().mean()


def gini_index(counts: torch.Tensor) -> torch.Tensor:
    """Return the Gini index of exposure: 0 when every item is shown equally, near 1 when one item takes all.

    G = sum_i (2i - n - 1) x_(i) / (n sum x) over counts sorted ascending, i = 1..n.
    NaN when nothing was recommended.
    """
    x = torch.sort(counts.double()).values
    n = x.numel()
    weights = 2 * torch.arange(1, n + 1, device=x.device, dtype=torch.float64) - n - 1
    total = x.sum()
    if total == 0:
        return torch.tensor(float("nan"), dtype=torch.float64, device=x.device)
    return (weights * x).sum() / (n * total)


def shannon_entropy(counts: torch.Tensor) -> torch.Tensor:
    """Return the Shannon entropy in bits of the exposure distribution; 0 log 0 counts as 0."""
    total = counts.sum()
    if total == 0:
        return torch.tensor(float("nan"), dtype=torch.float64, device=counts.device)
    p = counts.double() / total
    return -(torch.where(p > 0, p * torch.log2(p), torch.zeros_like(p))).sum()


def personalization(counts: torch.Tensor, num_lists: int, list_length: int) -> torch.Tensor:
    """Return 1 - the mean overlap |L_u & L_v| / K over all pairs of users' lists.

    Exact from exposure counts: an item shown in n lists is shared by
    n (n - 1) / 2 pairs, so the summed overlap is sum_i n_i (n_i - 1) / 2.
    NaN with fewer than two lists. Range [0, 1], higher means lists differ more.
    """
    if num_lists < 2:
        return torch.tensor(float("nan"), dtype=torch.float64, device=counts.device)
    n = counts.double()
    shared = (n * (n - 1) / 2).sum()
    pairs = num_lists * (num_lists - 1) / 2
    return 1 - shared / (pairs * list_length)
