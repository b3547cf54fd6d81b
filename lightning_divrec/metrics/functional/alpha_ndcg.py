"""alpha-NDCG over categories (Clarke et al., "Novelty and diversity in information retrieval evaluation", SIGIR 2008).

Legend: B users, K list length, T held-out items per user (padded), C categories.
"""

from __future__ import annotations

import torch


def alpha_dcg_gains(categories: torch.Tensor, relevant: torch.Tensor, alpha: float) -> torch.Tensor:
    """Return the gain at each rank: sum over categories c of the item of (1 - alpha)^(earlier relevant items in c).

    Only relevant items gain. Shapes: categories [B, K, C] bool, relevant [B, K] bool -> [B, K].
    """
    covered = (categories & relevant.unsqueeze(2)).double()  # [B, K, C]
    seen_before = covered.cumsum(dim=1) - covered  # relevant items of each category at earlier ranks
    return (covered * (1 - alpha) ** seen_before).sum(dim=2)


def ideal_alpha_dcg(target_categories: torch.Tensor, target_valid: torch.Tensor, k: int, alpha: float) -> torch.Tensor:
    """Return the alpha-DCG@K of the greedy ideal ordering of each user's held-out items.

    The exact ideal is NP-hard; the greedy one (pick the item with the largest
    marginal gain, ties by lower position) is the usual normaliser.
    Shapes: target_categories [B, T, C] bool, target_valid [B, T] bool -> [B].
    """
    batch, num_targets, _ = target_categories.shape
    categories = target_categories.double()
    seen = torch.zeros(batch, categories.shape[2], dtype=torch.float64, device=categories.device)
    available = target_valid.clone()
    total = torch.zeros(batch, dtype=torch.float64, device=categories.device)
    for rank in range(min(k, num_targets)):
        gains = (categories * (1 - alpha) ** seen.unsqueeze(1)).sum(dim=2)  # [B, T]
        gains = torch.where(available, gains, torch.full_like(gains, -1.0))
        best = gains.argmax(dim=1)  # first maximum: lowest position wins ties
        best_gain = gains.gather(1, best.unsqueeze(1)).squeeze(1).clamp_min(0)
        total += best_gain / torch.log2(torch.tensor(rank + 2.0, dtype=torch.float64))
        picked = available.gather(1, best.unsqueeze(1)).squeeze(1)
        seen += categories[torch.arange(batch), best] * picked.unsqueeze(1)
        available[torch.arange(batch), best] = False
    return total


def alpha_ndcg(
    list_categories: torch.Tensor,
    relevant: torch.Tensor,
    target_categories: torch.Tensor,
    target_valid: torch.Tensor,
    alpha: float = 0.5,
) -> torch.Tensor:
    """Return alpha-NDCG@K with K = list length; NaN where the ideal is 0 (no relevant item with a category)."""
    k = list_categories.shape[1]
    discounts = 1.0 / torch.log2(torch.arange(2, k + 2, device=relevant.device, dtype=torch.float64))
    dcg = (alpha_dcg_gains(list_categories, relevant, alpha) * discounts).sum(dim=1)
    ideal = ideal_alpha_dcg(target_categories, target_valid, k, alpha)
    return torch.where(ideal > 0, dcg / ideal.clamp_min(1e-300), torch.full_like(dcg, float("nan")))
