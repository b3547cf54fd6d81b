"""Candidate sets and one entry point for every re-ranker.

Legend: B users, I items, M candidates per user, K list length, C categories, D dim.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lightning_divrec.metrics.functional.diversity import cosine_similarity, jaccard_similarity
from lightning_divrec.metrics.functional.ranking import topk_indices
from lightning_divrec.rerank.calibration import calibrate
from lightning_divrec.rerank.common import check_trade_off, fill_by_relevance, scale_relevance
from lightning_divrec.rerank.dpp import dpp_greedy, dpp_kernel
from lightning_divrec.rerank.mmr import mmr

RERANKERS = ("none", "mmr", "mmr_mean", "dpp", "calibration")


@dataclass
class Candidates:
    """Each user's top-M items by model score, the input of every re-ranker."""

    items: torch.Tensor
    """[B, M] item indices, best score first (ties by lower item index)."""
    scores: torch.Tensor
    """[B, M] model scores of those items."""
    valid: torch.Tensor
    """[B, M] bool, False for excluded items that filled a short candidate set."""
    similarity: torch.Tensor
    """[B, M, M] item-item similarity within each candidate set."""
    categories: torch.Tensor | None = None
    """[B, M, C] bool categories of the candidates (calibration needs them)."""
    history_distribution: torch.Tensor | None = None
    """[B, C] category shares of each user's history (calibration needs them)."""

    @classmethod
    def from_scores(
        cls,
        scores: torch.Tensor,
        num_candidates: int,
        item_categories: torch.Tensor | None = None,
        item_embeddings: torch.Tensor | None = None,
        history_distribution: torch.Tensor | None = None,
    ) -> "Candidates":
        """Take the top ``num_candidates`` of ``scores`` [B, I] (history at ``-inf``).

        Similarity is cosine of ``item_embeddings`` when given, else Jaccard of
        ``item_categories``; one of them is required.
        """
        items = topk_indices(scores, num_candidates)
        candidate_scores = torch.gather(scores, 1, items)
        categories = item_categories[items] if item_categories is not None else None
        if item_embeddings is not None:
            similarity = cosine_similarity(item_embeddings[items])
        elif categories is not None:
            similarity = jaccard_similarity(categories)
        else:
            raise ValueError("candidate similarity needs item_categories or item_embeddings")
        return cls(
            items=items,
            scores=candidate_scores,
            valid=candidate_scores > float("-inf"),
            similarity=similarity,
            categories=categories,
            history_distribution=history_distribution,
        )


def rerank(method: str, candidates: Candidates, k: int, trade_off: float, fill: bool = True) -> torch.Tensor:
    """Return each user's re-ranked list of ``k`` item indices, [B, k].

    ``trade_off`` in [0, 1] is the one knob of every method: 0 keeps the model's
    order, larger values weigh diversity (MMR, DPP) or calibration more.
    ``fill=True`` completes a list that a method ended early (a DPP whose
    residuals fell below epsilon) with the best-ranked remaining candidates.
    Every list then has ``k`` items when the user has that many candidates,
    and any slot still empty is -1.
    """
    check_trade_off(trade_off)
    if method not in RERANKERS:
        raise ValueError(f"unknown re-ranker {method!r}; choose one of {', '.join(RERANKERS)}")
    steps = min(k, candidates.items.shape[1])
    if method == "none" or trade_off == 0:
        positions = torch.arange(steps, device=candidates.items.device).expand(candidates.items.shape[0], -1)
        positions = torch.where(candidates.valid[:, :steps], positions, torch.full_like(positions, -1))
    else:
        relevance = scale_relevance(candidates.scores, candidates.valid)
        if method in ("mmr", "mmr_mean"):
            redundancy = "mean" if method == "mmr_mean" else "max"
            positions = mmr(relevance, candidates.similarity, steps, trade_off, candidates.valid, redundancy)
        elif method == "dpp":
            kernel = dpp_kernel(relevance, candidates.similarity, trade_off)
            positions = dpp_greedy(kernel, steps, candidates.valid)
        else:
            if candidates.categories is None or candidates.history_distribution is None:
                raise ValueError("calibration needs candidate categories and each user's history distribution")
            positions = calibrate(
                relevance, candidates.categories, candidates.history_distribution, steps, trade_off, candidates.valid
            )
        if fill:
            positions = fill_by_relevance(positions, candidates.items.shape[1], candidates.valid)
    items = torch.gather(candidates.items, 1, positions.clamp_min(0))
    return torch.where(positions >= 0, items, torch.full_like(items, -1))
