"""Calibrated re-ranking (Steck, "Calibrated recommendations", RecSys 2018), greedy and batched.

Legend: B users, M candidates per user, K list length, C categories.
"""

from __future__ import annotations

import torch

from lightning_divrec.rerank.common import check_trade_off


def calibrate(
    relevance: torch.Tensor,
    candidate_categories: torch.Tensor,
    history_distribution: torch.Tensor,
    k: int,
    trade_off: float,
    valid: torch.Tensor | None = None,
    smoothing: float = 0.01,
) -> torch.Tensor:
    """Select ``k`` candidates greedily maximising (1 - w) * sum of relevance - w * KL(p || q~).

    p is the category distribution of the user's history, q that of the list
    (each item spreads weight 1 evenly over its categories) and
    q~ = (1 - smoothing) q + smoothing p. Each step adds the candidate with the
    best objective for the list extended by it. ``w = trade_off``: 0 keeps the
    relevance order. Ties go to the lowest candidate position.

    Shapes: relevance [B, M] (scaled to [0, 1]), candidate_categories [B, M, C]
    bool, history_distribution [B, C], valid [B, M] -> [B, k] candidate
    positions, -1 where a user has fewer than k valid candidates.
    """
    check_trade_off(trade_off)
    batch, num_candidates = relevance.shape
    if valid is None:
        valid = torch.ones_like(relevance, dtype=torch.bool)
    categories = candidate_categories.double()
    shares = categories / categories.sum(dim=2, keepdim=True).clamp_min(1)  # [B, M, C]
    history = history_distribution.double().unsqueeze(1)  # [B, 1, C]
    rows = torch.arange(batch, device=relevance.device)
    picks = torch.full((batch, k), -1, dtype=torch.long, device=relevance.device)
    available = valid.clone()
    mass = torch.zeros(batch, 1, categories.shape[2], dtype=torch.float64, device=relevance.device)
    relevance_sum = torch.zeros(batch, 1, dtype=torch.float64, device=relevance.device)
    for step in range(min(k, num_candidates)):
        extended = mass + shares  # category mass of the list plus each candidate, [B, M, C]
        total = extended.sum(dim=2, keepdim=True)
        q = torch.where(total > 0, extended / total.clamp_min(1e-300), torch.zeros_like(extended))
        mixed = (1 - smoothing) * q + smoothing * history
        terms = torch.where(history > 0, history * torch.log2(history / mixed.clamp_min(1e-300)), torch.zeros_like(mixed))
        divergence = terms.sum(dim=2)  # [B, M]
        objective = (1 - trade_off) * (relevance_sum + relevance.double()) - trade_off * divergence
        objective = torch.where(available, objective, torch.full_like(objective, float("-inf")))
        best = objective.argmax(dim=1)
        has_candidate = available[rows, best]
        picks[:, step] = torch.where(has_candidate, best, torch.full_like(best, -1))
        available[rows, best] = False
        chosen = has_candidate.double().unsqueeze(1)
        mass = mass + (shares[rows, best] * chosen).unsqueeze(1)
        relevance_sum = relevance_sum + relevance.double()[rows, best].unsqueeze(1) * chosen
    return picks
