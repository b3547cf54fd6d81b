"""Maximal marginal relevance (Carbonell and Goldstein, SIGIR 1998), batched over users.

Legend: B users, M candidates per user, K list length.
"""

from __future__ import annotations

import torch

from lightning_divrec.rerank.common import check_trade_off


def mmr(
    relevance: torch.Tensor,
    similarity: torch.Tensor,
    k: int,
    trade_off: float,
    valid: torch.Tensor | None = None,
    redundancy: str = "max",
) -> torch.Tensor:
    """Select ``k`` candidates greedily by (1 - w) * relevance - w * redundancy.

    ``w = trade_off``: 0 returns the relevance order, 1 ignores relevance after
    the first pick (which is always the most relevant candidate). Ties go to
    the lowest candidate position, which is the better model rank when the
    candidates arrive sorted by score.

    ``redundancy="max"`` is Carbonell and Goldstein's: the highest similarity
    to an item already selected. ``"mean"`` is the mean similarity to the
    selected items. Each pick then adds the most to the list's mean pairwise
    distance (intra-list diversity), as in the bounded greedy selection of
    Smyth and McClave (ICCBR 2001).

    Shapes: relevance [B, M] (scaled to [0, 1]), similarity [B, M, M],
    valid [B, M] bool -> [B, k] candidate positions, -1 where a user has fewer
    than k valid candidates.
    """
    check_trade_off(trade_off)
    if redundancy not in ("max", "mean"):
        raise ValueError(f"invalid redundancy {redundancy!r}: use 'max' or 'mean'")
    batch, num_candidates = relevance.shape
    if similarity.shape != (batch, num_candidates, num_candidates):
        raise ValueError(
            f"similarity must have shape [B, M, M] = {[batch, num_candidates, num_candidates]} for relevance "
            f"[B, M] = {[batch, num_candidates]}, got {list(similarity.shape)}"
        )
    if valid is None:
        valid = torch.ones_like(relevance, dtype=torch.bool)
    rows = torch.arange(batch, device=relevance.device)
    picks = torch.full((batch, k), -1, dtype=torch.long, device=relevance.device)
    available = valid.clone()
    # Highest similarity of each candidate to the selected set. It may be
    # negative (cosine), so it starts at -inf and counts as 0 before the first pick.
    highest = torch.full_like(relevance, float("-inf"))
    # Sum of each candidate's similarities to the selected set. A user who misses a pick has no
    # candidates left, so every user still choosing at step s has s picks and the mean is total / s.
    total = torch.zeros_like(relevance)
    for step in range(min(k, num_candidates)):
        if step == 0:
            penalty = torch.zeros_like(relevance)
        elif redundancy == "max":
            penalty = highest
        else:
            penalty = total / step
        objective = (1 - trade_off) * relevance - trade_off * penalty
        objective = torch.where(available, objective, torch.full_like(objective, float("-inf")))
        best = objective.argmax(dim=1)  # first maximum: lowest position wins ties
        has_candidate = available[rows, best]
        picks[:, step] = torch.where(has_candidate, best, torch.full_like(best, -1))
        available[rows, best] = False
        picked = has_candidate.unsqueeze(1)  # [B, 1]
        picked_similarity = similarity[rows, best]  # [B, M]
        highest = torch.where(picked, torch.maximum(highest, picked_similarity), highest)
        total = total + picked_similarity
    return picks
