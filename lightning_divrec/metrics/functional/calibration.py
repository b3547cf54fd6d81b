"""Calibration of a list against the user's history (Steck, "Calibrated recommendations", RecSys 2018).

Legend: B users, K list length, C categories, I items.
"""

from __future__ import annotations

import torch


def category_distribution(history: torch.Tensor, item_categories: torch.Tensor) -> torch.Tensor:
    """Return p(c) of each user's history, each item spreading weight 1 evenly over its categories.

    Shapes: history [B, I] bool, item_categories [I, C] bool -> [B, C]. Rows
    without any categorised item get all zeros. Cost grows with the number of
    history items, not with B * I * C.
    """
    categories = item_categories.double()
    per_item = categories / categories.sum(dim=1, keepdim=True).clamp_min(1)  # [I, C]
    rows, items = torch.nonzero(history, as_tuple=True)  # rows ascend, so each user is one segment
    # Segment sums by differences of a running sum: much faster on CPU than
    # index_add_ with repeated row indices.
    running = torch.cat([per_item.new_zeros(1, per_item.shape[1]), per_item[items].cumsum(dim=0)])  # [N + 1, C]
    ends = torch.cumsum(torch.bincount(rows, minlength=history.shape[0]), dim=0)
    starts = torch.cat([ends.new_zeros(1), ends[:-1]])
    mass = running[ends] - running[starts]  # [B, C]
    total = mass.sum(dim=1, keepdim=True)
    return torch.where(total > 0, mass / total.clamp_min(1e-300), torch.zeros_like(mass))


def calibration_kl(history: torch.Tensor, recommended: torch.Tensor, smoothing: float = 0.01) -> torch.Tensor:
    """Return KL(p || q~) in bits, q~ = (1 - smoothing) q + smoothing p.

    ``history`` p and ``recommended`` q are [B, C] category distributions.
    The smoothing keeps the divergence finite when the list misses a category
    of the history. NaN for a user whose history has no category. 0 is
    perfectly calibrated; lower is better.
    """
    mixed = (1 - smoothing) * recommended + smoothing * history
    terms = torch.where(history > 0, history * torch.log2(history / mixed.clamp_min(1e-300)), torch.zeros_like(history))
    divergence = terms.sum(dim=1)
    return torch.where(history.sum(dim=1) > 0, divergence, torch.full_like(divergence, float("nan")))
