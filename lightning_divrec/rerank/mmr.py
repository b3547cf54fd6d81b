"""Maximal marginal relevance (Carbonell and Goldstein, SIGIR 1998), batched over users.

Legend: B users, M candidates per user, K list length.
"""

from __future__ import annotations

import torch

from lightning_divrec.rerank.common import check_trade_off


def mmr(relevance: torch.Tensor, similarity: torch.Tensor, k: int, trade_off: float, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Select ``k`` candidates greedily by (1 - w) * relevance - w * max similarity to those already selected.

    ``w = trade_off``: 0 returns the relevance order, 1 ignores relevance after
    the first pick (which is always the most relevant candidate). Ties go to
    the lowest candidate position, which is the better model rank when the
    candidates arrive sorted by score.

    Shapes: relevance [B, M] (scaled to [0, 1]), similarity [B, M, M],
    valid [B, M] bool -> [B, k] candidate positions, -1 where a user has fewer
    than k valid candidates.
    """
    check_trade_off(trade_off)
    batch, num_candidates = relevance.shape
    if valid is None:
        valid = torch.ones_like(relevance, dtype=torch.bool)
    rows = torch.arange(batch, device=relevance.device)
    picks = torch.full((batch, k), -1, dtype=torch.long, device=relevance.device)
    available = valid.clone()
    # Highest similarity of each candidate to the selected set. It may be
    # negative (cosine), so it starts at -inf and counts as 0 before the first pick.
    redundancy = torch.full_like(relevance, float("-inf"))
    for step in range(min(k, num_candidates)):
        penalty = redundancy if step > 0 else torch.zeros_like(redundancy)
        objective = (1 - trade_off) * relevance - trade_off * penalty
        objective = torch.where(available, objective, torch.full_like(objective, float("-inf")))
        best = objective.argmax(dim=1)  # first maximum: lowest position wins ties
        has_candidate = available[rows, best]
        picks[:, step] = torch.where(has_candidate, best, torch.full_like(best, -1))
        available[rows, best] = False
        picked_similarity = torch.where(
            has_candidate.unsqueeze(1), similarity[rows, best], torch.full_like(redundancy, float("-inf"))
        )
        redundancy = torch.maximum(redundancy, picked_similarity)
    return picks
