"""Distillation losses: listwise KD over a candidate set and position-weighted ranking distillation.

Both losses cast their inputs to float32 first, so they stay finite when
the scores come from fp16 or bf16 autocast.

Legend: B rows (users) in the batch, N candidates per row, K teacher list length.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def listwise_kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    temperature: float = 1.0,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Return T^2 * mean over rows of KL(p_teacher || p_student) over each row's candidates.

    ``p = softmax(logits / T)`` over the candidates that ``mask`` keeps
    (all when ``mask`` is None). The T^2 factor keeps the gradient size
    independent of T, so the KD weight means the same at every temperature.
    Identical logits give exactly 0. A row with no kept candidate adds 0.

    Shapes: student_logits [B, N], teacher_logits [B, N], mask [B, N] bool -> scalar.
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student logits {tuple(student_logits.shape)} and teacher logits {tuple(teacher_logits.shape)} differ in shape")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    student = student_logits.float() / temperature
    teacher = teacher_logits.float() / temperature
    if mask is None:
        mask = torch.ones_like(student, dtype=torch.bool)
    negative_infinity = torch.full_like(student, float("-inf"))
    student_log_probs = F.log_softmax(torch.where(mask, student, negative_infinity), dim=1)
    teacher_log_probs = F.log_softmax(torch.where(mask, teacher, negative_infinity), dim=1)
    # Masked slots are -inf in both; torch.where keeps their NaN out of the sum.
    terms = teacher_log_probs.exp() * (teacher_log_probs - student_log_probs)
    per_row = torch.where(mask, terms, torch.zeros_like(terms)).sum(dim=1)  # [B]
    return per_row.mean() * temperature**2


def position_weights(length: int, decay: float, device: torch.device | None = None) -> torch.Tensor:
    """Return weights w_r proportional to exp(-r / decay) for ranks r = 0..length-1, summing to 1.

    A small ``decay`` puts nearly all weight on the teacher's first items; a
    large one weighs the whole list almost evenly.

    Shapes: -> [length].
    """
    if decay <= 0:
        raise ValueError(f"decay must be positive, got {decay}")
    ranks = torch.arange(length, dtype=torch.float32, device=device)
    weights = torch.exp(-ranks / decay)
    return weights / weights.sum()


def ranking_distillation_loss(
    student_top: torch.Tensor,
    student_negatives: torch.Tensor,
    weights: torch.Tensor,
    top_mask: torch.Tensor | None = None,
    negative_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Return the position-weighted pairwise loss that treats the teacher's top-K as positives.

    For each row, every teacher item at rank r is a positive of weight
    ``weights[r]`` against every sampled negative j, with the BPR term
    softplus(s_j - s_r) averaged over the kept negatives:

        loss = mean_b  sum_r w_r * mean_j softplus(s_bj - s_br) / sum_r w_r

    where the sums run over the kept ranks of row b (the weights are
    renormalised when ``top_mask`` drops some). Rows with no kept rank or
    no kept negative add 0.

    Shapes: student_top [B, K], student_negatives [B, N], weights [K],
        top_mask [B, K] bool, negative_mask [B, N] bool -> scalar.
    """
    top = student_top.float()
    negatives = student_negatives.float()
    if top_mask is None:
        top_mask = torch.ones_like(top, dtype=torch.bool)
    if negative_mask is None:
        negative_mask = torch.ones_like(negatives, dtype=torch.bool)
    pairwise = F.softplus(negatives.unsqueeze(1) - top.unsqueeze(2))  # [B, K, N]
    pair_mask = top_mask.unsqueeze(2) & negative_mask.unsqueeze(1)  # [B, K, N]
    pairwise = torch.where(pair_mask, pairwise, torch.zeros_like(pairwise))
    negatives_kept = negative_mask.sum(dim=1, keepdim=True).clamp_min(1)  # [B, 1]
    per_rank = pairwise.sum(dim=2) / negatives_kept  # [B, K]
    row_weights = torch.where(top_mask, weights.float().unsqueeze(0), torch.zeros_like(per_rank))  # [B, K]
    weight_sums = row_weights.sum(dim=1)  # [B]
    per_row = (row_weights * per_rank).sum(dim=1) / weight_sums.clamp_min(1e-12)
    return per_row.mean()
