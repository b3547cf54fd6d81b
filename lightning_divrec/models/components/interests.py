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


def score_across_interests(interest_scores: torch.Tensor, mix: float) -> torch.Tensor:
    """Combine per-interest scores into one score per item, trading relevance for spread.

    ``score_i = max_m (s_mi - mix * g_m)`` where ``g_m = max_i s_mi`` is the
    best score of interest m. At ``mix = 0`` this is the plain maximum, where
    the interest with the largest scores fills most of the list. At
    ``mix = 1`` every interest's best item scores 0, so the top of the list
    takes items from every interest in turn.

    Shapes: interest_scores [B, M, I] -> [B, I].
    """
    if not 0.0 <= mix <= 1.0:
        raise ValueError(f"interest mix {mix} must lie in [0, 1]")
    offsets = interest_scores.amax(dim=2, keepdim=True)  # [B, M, 1]
    return (interest_scores - mix * offsets).amax(dim=1)
