"""Greedy MAP inference for a determinantal point process, batched over users.

The fast greedy algorithm of Chen, Zhang and Zhou, "Fast greedy MAP inference
for determinantal point process to improve recommendation diversity",
NeurIPS 2018 (Algorithm 1), with their relevance-weighted kernel.

Legend: B users, M candidates per user, K list length.
"""

from __future__ import annotations

import math

import torch

from lightning_divrec.rerank.common import check_trade_off


def dpp_kernel(relevance: torch.Tensor, similarity: torch.Tensor, trade_off: float) -> torch.Tensor:
    """Return L = diag(q) S diag(q) with q_i = exp(alpha * r_i), alpha = (1 - w) / (2 w).

    ``w = trade_off`` in (0, 1]: w = 1 gives alpha = 0, a kernel of similarity
    alone; smaller w weighs relevance more (the paper's theta is 1 - w). The
    exponent is shifted by its row maximum, which scales each user's kernel
    by a constant and so leaves the greedy choice unchanged while avoiding
    overflow. Shapes: relevance [B, M], similarity [B, M, M] -> [B, M, M].
    """
    if trade_off <= 0:
        raise ValueError("the DPP kernel needs trade_off > 0; trade_off = 0 is the plain relevance order")
    alpha = (1 - trade_off) / (2 * trade_off)
    exponent = alpha * relevance
    quality = torch.exp(exponent - exponent.amax(dim=1, keepdim=True))  # [B, M]
    return quality.unsqueeze(2) * similarity * quality.unsqueeze(1)


def dpp_greedy(kernel: torch.Tensor, k: int, valid: torch.Tensor | None = None, epsilon: float = 1e-10) -> torch.Tensor:
    """Select up to ``k`` items that greedily maximise log det of the kernel restricted to the selection.

    Each step picks the candidate with the largest residual d_i^2 (the gain
    in det) and updates every residual with one new Cholesky row. A user's
    list stops when the best residual falls below ``epsilon``: a duplicate of
    a selected item (d^2 = 0, or a small negative number after float
    rounding) or a kernel that is not positive semi-definite (d^2 < 0) ends
    the list instead of taking a square root of a negative number, so the
    result never contains NaN. Ties go to the lowest candidate position.

    Shapes: kernel [B, M, M], valid [B, M] bool -> [B, k] candidate positions,
    -1 after a list stopped.
    """
    batch, num_candidates, _ = kernel.shape
    kernel = kernel.double()
    if valid is None:
        valid = torch.ones(batch, num_candidates, dtype=torch.bool, device=kernel.device)
    rows = torch.arange(batch, device=kernel.device)
    steps = min(k, num_candidates)
    cholesky_rows = torch.zeros(batch, steps, num_candidates, dtype=torch.float64, device=kernel.device)
    residual = torch.diagonal(kernel, dim1=1, dim2=2).clone()  # d_i^2, [B, M]
    available = valid.clone()
    active = torch.ones(batch, dtype=torch.bool, device=kernel.device)
    picks = torch.full((batch, k), -1, dtype=torch.long, device=kernel.device)
    for step in range(steps):
        gains = torch.where(available, residual, torch.full_like(residual, -math.inf))
        best = gains.argmax(dim=1)
        best_gain = gains[rows, best]
        active &= best_gain >= epsilon
        if not active.any():
            break
        picks[:, step] = torch.where(active, best, torch.full_like(best, -1))
        available[rows, best] = False
        # e_i = (L[best, i] - <c_best, c_i>) / d_best over the rows built so far.
        projection = torch.einsum("bs,bsm->bm", cholesky_rows[rows, :step, best], cholesky_rows[:, :step])
        scale = torch.sqrt(best_gain.clamp_min(epsilon)).unsqueeze(1)
        new_row = (kernel[rows, best] - projection) / scale
        new_row = new_row * active.unsqueeze(1)
        cholesky_rows[:, step] = new_row
        residual = residual - new_row.square()
    return picks
