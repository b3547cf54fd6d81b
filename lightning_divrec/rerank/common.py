"""Pieces shared by the re-rankers: candidate sets, relevance scaling and list filling.

Legend: B users, M candidates per user, K list length, C categories, D dim.
"""

from __future__ import annotations

import torch


def scale_relevance(scores: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Min-max scale each user's candidate scores to [0, 1], so that one trade-off value means
    the same for every model. Invalid candidates get 0; a user whose valid scores are all equal gets 1.

    Shapes: scores [B, M], valid [B, M] -> [B, M].
    """
    low = torch.where(valid, scores, torch.full_like(scores, float("inf"))).amin(dim=1, keepdim=True)
    high = torch.where(valid, scores, torch.full_like(scores, float("-inf"))).amax(dim=1, keepdim=True)
    span = high - low
    scaled = torch.where(span > 0, (scores - low) / span.clamp_min(1e-12), torch.ones_like(scores))
    return torch.where(valid, scaled, torch.zeros_like(scores))


def check_trade_off(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"trade_off must lie in [0, 1] (0 keeps the relevance order, 1 is diversity only), got {value}")
    return value


def fill_by_relevance(picks: torch.Tensor, num_candidates: int, valid: torch.Tensor) -> torch.Tensor:
    """Replace the -1 slots of ``picks`` [B, K] with the best-ranked candidates not yet picked.

    Candidates are ordered by relevance, so "best-ranked" is the lowest position.
    Slots stay -1 when a user has too few valid candidates.
    """
    missing = picks < 0
    if not missing.any():
        return picks
    already_picked = torch.zeros(picks.shape[0], num_candidates + 1, dtype=torch.bool, device=picks.device)
    already_picked.scatter_(1, torch.where(missing, num_candidates, picks), True)
    available = ~already_picked[:, :num_candidates] & valid  # [B, M]
    # Rank the still available candidates by position; fill the missing slots in order.
    order = torch.where(available, torch.arange(num_candidates, device=picks.device), num_candidates)
    order = torch.sort(order, dim=1).values  # available positions first, ascending
    slot_rank = missing.cumsum(dim=1) - 1  # 0 for the first missing slot of a row, 1 for the next, ...
    fill = torch.gather(order, 1, slot_rank.clamp(min=0, max=num_candidates - 1))
    fill = torch.where(fill >= num_candidates, torch.full_like(fill, -1), fill)
    return torch.where(missing, fill, picks)
