"""Training losses written to stay finite under fp16 and bf16 autocast."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bpr_loss(positive_scores: torch.Tensor, negative_scores: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Return the mean Bayesian personalised ranking loss, -log sigmoid(s_pos - s_neg).

    Computed as softplus(s_neg - s_pos) in float32: ``log(sigmoid(x))`` in
    fp16 rounds sigmoid(-20) = 2e-9 to 0 and returns inf, and already
    misstates the loss by 2% at x = -17. With ``weight`` [B], the mean over
    rows is weighted: sum_b w_b l_b / sum_b w_b.

    Shapes: [B] and [B] (or [B, N] negatives against [B, 1] positives) -> scalar.
    """
    difference = positive_scores.float() - negative_scores.float()
    losses = F.softplus(-difference)
    if weight is None:
        return losses.mean()
    return _weighted_mean(losses.reshape(len(weight), -1).mean(dim=1), weight)


def sampled_softmax_loss(
    positive_scores: torch.Tensor, negative_scores: torch.Tensor, temperature: float = 1.0, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Return the mean cross-entropy of each positive against its sampled negatives.

    The logits of row b are (s_pos, s_neg_1, ..., s_neg_N) / temperature and
    the positive is the target class, computed in float32 so that fp16 and
    bf16 scores cannot overflow the log-sum-exp. With ``weight`` [B] the mean
    over rows is weighted as in ``bpr_loss``.

    Shapes: positive_scores [B], negative_scores [B, N] -> scalar.
    """
    logits = torch.cat([positive_scores.float()[:, None], negative_scores.float()], dim=1) / temperature  # [B, 1 + N]
    target = torch.zeros(len(logits), dtype=torch.long, device=logits.device)
    if weight is None:
        return F.cross_entropy(logits, target)
    return _weighted_mean(F.cross_entropy(logits, target, reduction="none"), weight)


def _weighted_mean(losses: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Return sum_b w_b l_b / sum_b w_b for losses [B] and weights [B]."""
    weight = weight.float()
    return (losses * weight).sum() / weight.sum()
