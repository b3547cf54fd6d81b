"""Multi-interest pooling: M attention summaries of a sequence, and scoring across them.

Legend: B batch, L sequence length, D dim, M interests, I items.
"""

from __future__ import annotations

import torch
from torch import nn


class InterestPooling(nn.Module):
    """Summarise each causal prefix of a sequence into M interest vectors.

    Interest m at position t is ``h_t + sum_j a_mtj h_j`` over the real
    positions j <= t, with ``a_mt = softmax_j(q_m . tanh(W h_j))``: a
    self-attentive pooling whose M learned queries pick out different parts
    of the history, on top of the position's own output ``h_t``, which keeps
    the recency signal of a single-vector model.

    Shapes: ``forward(hidden [B, L, D], real [B, L] bool) -> [B, L, M, D]``.
    """

    def __init__(self, dim: int, num_interests: int, hidden_dim: int | None = None):
        super().__init__()
        if num_interests < 1:
            raise ValueError(f"num_interests={num_interests} must be at least 1")
        self.num_interests = num_interests
        self.key = nn.Linear(dim, hidden_dim or dim)
        self.queries = nn.Parameter(torch.randn(num_interests, hidden_dim or dim) * (hidden_dim or dim) ** -0.5)

    def forward(self, hidden: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
        length = hidden.shape[1]
        logits = torch.tanh(self.key(hidden)) @ self.queries.T  # [B, L, D'] @ [D', M] -> [B, L(key), M]
        causal = torch.ones(length, length, dtype=torch.bool, device=hidden.device).tril()  # [L(query), L(key)]
        allowed = causal[None, :, :] & real[:, None, :]  # [B, L, L]
        # A padded query position has no real key to attend, so it attends itself and its softmax row is not empty.
        allowed = allowed | torch.eye(length, dtype=torch.bool, device=hidden.device)[None]
        scores = logits.float().permute(0, 2, 1)[:, :, None, :]  # [B, M, 1, L(key)]
        scores = scores.masked_fill(~allowed[:, None], float("-inf"))  # [B, M, L(query), L(key)]
        weights = torch.softmax(scores, dim=-1).to(hidden.dtype)
        pooled = weights @ hidden[:, None]  # [B, M, L, L] @ [B, 1, L, D] -> [B, M, L, D]
        return hidden[:, :, None, :] + pooled.transpose(1, 2)  # [B, L, M, D]


def route_to_target(interests: torch.Tensor, target_vectors: torch.Tensor) -> torch.Tensor:
    """Pick, for each position, the interest closest (dot product) to its target item.

    The choice is made without gradient, so each interest is trained only on
    the targets it already scores best, which pushes interests apart.

    Shapes: interests [P, M, D], target_vectors [P, D] -> [P, D].
    """
    with torch.no_grad():
        choice = (interests * target_vectors[:, None, :]).sum(-1).argmax(dim=1)  # [P]
    return interests[torch.arange(len(interests), device=interests.device), choice]


def score_across_interests(interest_scores: torch.Tensor, mix: float, excluded: torch.Tensor | None = None) -> torch.Tensor:
    """Combine per-interest scores into one score per item, trading relevance for spread across interests.

    Each item is claimed by the interest that scores it highest, and its
    relevance is that score, ``r_i = max_m s_mi``. With ``g_m`` the highest
    relevance among the items that interest m claims:

        score_i = r_i - mix * g_(interest claiming i)

    At ``mix = 0`` this is the plain maximum over interests. The interest
    with the largest scores then fills most of the list, and because every
    interest shares the position's own output (see ``InterestPooling``), the
    top items of all interests tend to be the same. At ``mix = 1`` the best
    item of every interest scores 0, so the list takes the most relevant
    items of each interest's claimed set in turn, in order of relevance
    within each set. The claimed sets do not overlap, so a list spread over
    them contains items that different interests favour. Relevance drops in
    exchange. The top-K of the result is the list, so the scores still rank
    the full catalogue. ``excluded`` marks the items that the evaluation
    removes from each user's ranking. They never set ``g_m``, because an
    interest whose best claimed item is removed would otherwise start its
    turn late.

    Shapes: interest_scores [B, M, I], excluded [B, I] bool or None -> [B, I].
    """
    if not 0.0 <= mix <= 1.0:
        raise ValueError(f"interest mix {mix} must lie in [0, 1]")
    relevance, claimed_by = interest_scores.max(dim=1)  # [B, I] each
    candidates = relevance if excluded is None else relevance.masked_fill(excluded, float("-inf"))
    best_claimed = torch.full(
        interest_scores.shape[:2], float("-inf"), dtype=interest_scores.dtype, device=interest_scores.device
    ).scatter_reduce(1, claimed_by, candidates, reduce="amax")  # [B, M]; -inf for an interest that claims nothing
    return relevance - mix * best_claimed.gather(1, claimed_by)
