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


def ideal_alpha_dcg_prefix(target_categories: torch.Tensor, target_valid: torch.Tensor, k: int, alpha: float) -> torch.Tensor:
    """Return the alpha-DCG of the greedy ideal ordering of each user's held-out items at every cut-off 1..K.

    The exact ideal is NP-hard, and the greedy one (pick the item with the
    largest marginal gain, ties by lower position) is the usual normaliser.
    The greedy order at cut-off k is the first k items of the order at K, so
    column k - 1 is the ideal alpha-DCG@k for every k <= K. Each of the
    min(K, T) steps runs for all users at once.
    Shapes: target_categories [B, T, C] bool, target_valid [B, T] bool -> [B, K],
    constant after a user's held-out items run out.
    """
    batch, num_targets, num_categories = target_categories.shape
    device = target_categories.device
    categories = target_categories.double()  # [B, T, C]
    rows = torch.arange(batch, device=device)
    seen = torch.zeros(batch, num_categories, dtype=torch.float64, device=device)
    available = target_valid.clone()
    gains_per_rank = torch.zeros(batch, k, dtype=torch.float64, device=device)
    for rank in range(min(k, num_targets)):
        weights = (1 - alpha) ** seen  # [B, C]: the gain one more relevant item of each category earns
        gains = torch.bmm(categories, weights.unsqueeze(2)).squeeze(2)  # [B, T, C] @ [B, C, 1] -> [B, T]
        gains.masked_fill_(~available, -1.0)
        best = gains.argmax(dim=1)  # [B]; the first maximum, so the lowest position wins ties
        picked = available[rows, best]  # [B]; False once a user has no item left
        gains_per_rank[:, rank] = gains[rows, best].clamp_min(0)
        seen += categories[rows, best] * picked.unsqueeze(1)
        available[rows, best] = False
    discounts = 1.0 / torch.log2(torch.arange(2, k + 2, device=device, dtype=torch.float64))
    return (gains_per_rank * discounts).cumsum(dim=1)


def ideal_alpha_dcg(target_categories: torch.Tensor, target_valid: torch.Tensor, k: int, alpha: float) -> torch.Tensor:
    """Return the alpha-DCG@K of the greedy ideal ordering of each user's held-out items.

    Shapes: target_categories [B, T, C] bool, target_valid [B, T] bool -> [B].
    """
    return ideal_alpha_dcg_prefix(target_categories, target_valid, k, alpha)[:, k - 1]


def alpha_ndcg(
    list_categories: torch.Tensor,
    relevant: torch.Tensor,
    target_categories: torch.Tensor,
    target_valid: torch.Tensor,
    alpha: float = 0.5,
    ideal: torch.Tensor | None = None,
) -> torch.Tensor:
    """Return alpha-NDCG@K with K = list length; NaN where the ideal is 0 (no relevant item with a category).

    ``ideal`` [B] is the ideal alpha-DCG@K when already computed (a column of
    ``ideal_alpha_dcg_prefix``); without it the greedy ideal is computed here.
    """
    k = list_categories.shape[1]
    discounts = 1.0 / torch.log2(torch.arange(2, k + 2, device=relevant.device, dtype=torch.float64))
    dcg = (alpha_dcg_gains(list_categories, relevant, alpha) * discounts).sum(dim=1)
    if ideal is None:
        ideal = ideal_alpha_dcg(target_categories, target_valid, k, alpha)
    return torch.where(ideal > 0, dcg / ideal.clamp_min(1e-300), torch.full_like(dcg, float("nan")))
