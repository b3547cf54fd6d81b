"""Training losses written to stay finite under fp16 and bf16 autocast."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bpr_loss(positive_scores: torch.Tensor, negative_scores: torch.Tensor) -> torch.Tensor:
    """Return the mean Bayesian personalised ranking loss, -log sigmoid(s_pos - s_neg).

    Computed as softplus(s_neg - s_pos) in float32: ``log(sigmoid(x))`` in
    fp16 rounds sigmoid(-20) = 2e-9 to 0 and returns inf, and already
    misstates the loss by 2% at x = -17.

    Shapes: [B] and [B] (or [B, N] negatives against [B, 1] positives) -> scalar.
    """
    difference = positive_scores.float() - negative_scores.float()
    return F.softplus(-difference).mean()
