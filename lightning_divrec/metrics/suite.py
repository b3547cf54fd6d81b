"""``RankingMetricSuite``: ranks once per batch and feeds every metric the same top-K lists."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from lightning_divrec.metrics.base import check_empty_target_action
from lightning_divrec.metrics.diversity import AlphaNDCG, Calibration, CategoryCoverage, IntraListDiversity
from lightning_divrec.metrics.exposure import CatalogCoverage, GiniIndex, Personalization, ShannonEntropy
from lightning_divrec.metrics.functional.alpha_ndcg import ideal_alpha_dcg_prefix
from lightning_divrec.metrics.functional.calibration import category_distribution
from lightning_divrec.metrics.functional.ranking import RankedLists
from lightning_divrec.metrics.functional.relevance import auc
from lightning_divrec.metrics.popularity import AveragePopularity, Novelty, Serendipity, TailShare
from lightning_divrec.metrics.relevance import AUC, F1, MAP, MRR, NDCG, EvaluatedUsers, HitRate, Precision, Recall

RELEVANCE = {"recall": Recall, "precision": Precision, "f1": F1, "ndcg": NDCG, "mrr": MRR, "hit": HitRate, "map": MAP}


class RankingMetricSuite(nn.Module):
    """Relevance and beyond-accuracy metrics at every K in ``ks``, keyed ``name@k``.

    ``update`` takes full-catalogue scores with excluded items set to ``-inf``
    and the held-out targets. ``compute`` syncs across processes when
    ``torch.distributed`` is initialised and returns a dict of scalars that
    is identical on every process. A metric is included when the side
    information it needs is given:

    ========================  =========================================================
    always                    users, auc, recall, precision, f1, ndcg, mrr, hit, map,
                              coverage, gini, entropy, personalization
    ``item_categories``       ild, category_coverage, alpha_ndcg, calibration
    ``item_embeddings``       ild_cosine
    ``item_popularity``       novelty (by users)
    ``item_interactions``     novelty_interactions, serendipity, tail_share, avg_popularity
    ========================  =========================================================

    Users without held-out items follow ``empty_target_action``: under ``skip``
    (default) they are left out of every metric, beyond-accuracy ones included,
    so all metrics describe the same users.

    Args:
        ks: cut-offs, for example ``[10, 20]``.
        num_items: catalogue size I.
        item_categories: [I, C] bool.
        item_embeddings: [I, D] item vectors for cosine ILD.
        item_popularity: [I] training users per item.
        num_users: training users, the denominator of ``item_popularity`` shares.
        item_interactions: [I] training interactions per item.
        alpha: redundancy penalty of alpha-NDCG (default 0.5).
        calibration_smoothing: smoothing of the calibration KL (default 0.01).
        head_fraction: share of the catalogue counted as popular head (default 0.2).
        compute_auc: include the full-catalogue AUC, which sorts every score row (default True).
        empty_target_action: ``skip``, ``zero``, ``one`` or ``error``.
    """

    def __init__(
        self,
        ks: Sequence[int],
        num_items: int,
        item_categories: torch.Tensor | None = None,
        item_embeddings: torch.Tensor | None = None,
        item_popularity: torch.Tensor | None = None,
        num_users: int | None = None,
        item_interactions: torch.Tensor | None = None,
        alpha: float = 0.5,
        calibration_smoothing: float = 0.01,
        head_fraction: float = 0.2,
        compute_auc: bool = True,
        empty_target_action: str = "skip",
    ):
        super().__init__()
        if not ks:
            raise ValueError("ks must name at least one cut-off")
        if item_popularity is not None and num_users is None:
            raise ValueError("num_users is required with item_popularity")
        self.ks = sorted(set(int(k) for k in ks))
        self.empty_target_action = check_empty_target_action(empty_target_action)
        self.compute_auc = compute_auc
        self.alpha = alpha
        if item_categories is not None:
            self.register_buffer("item_categories", item_categories.bool(), persistent=False)
        else:
            self.item_categories = None
        policy = {"empty_target_action": empty_target_action}

        metrics: dict[str, nn.Module] = {"users": EvaluatedUsers(1)}
        if compute_auc:
            metrics["auc"] = AUC(**policy)
        for k in self.ks:
            for name, metric in RELEVANCE.items():
                metrics[f"{name}@{k}"] = metric(k, **policy)
            metrics[f"coverage@{k}"] = CatalogCoverage(k, num_items)
            metrics[f"gini@{k}"] = GiniIndex(k, num_items)
            metrics[f"entropy@{k}"] = ShannonEntropy(k, num_items)
            metrics[f"personalization@{k}"] = Personalization(k, num_items)
            if item_categories is not None:
                metrics[f"ild@{k}"] = IntraListDiversity(k, item_categories=item_categories)
                metrics[f"category_coverage@{k}"] = CategoryCoverage(k, item_categories)
                metrics[f"alpha_ndcg@{k}"] = AlphaNDCG(k, item_categories, alpha=alpha, **policy)
                metrics[f"calibration@{k}"] = Calibration(k, item_categories, smoothing=calibration_smoothing)
            if item_embeddings is not None:
                metrics[f"ild_cosine@{k}"] = IntraListDiversity(k, item_embeddings=item_embeddings)
            if item_popularity is not None:
                metrics[f"novelty@{k}"] = Novelty(k, item_popularity, num_users)
            if item_interactions is not None:
                total = int(item_interactions.sum())
                metrics[f"novelty_interactions@{k}"] = Novelty(k, item_interactions, total)
                metrics[f"serendipity@{k}"] = Serendipity(k, item_interactions, **policy)
                metrics[f"tail_share@{k}"] = TailShare(k, item_interactions, head_fraction)
                metrics[f"avg_popularity@{k}"] = AveragePopularity(k, item_interactions)
        self.metrics = nn.ModuleDict(metrics)

    @torch.no_grad()
    def update(
        self,
        scores: torch.Tensor,
        target: torch.Tensor,
        history: torch.Tensor | None = None,
        history_distribution: torch.Tensor | None = None,
    ) -> None:
        """Rank ``scores`` [B, I] once and update every metric.

        ``target`` [B, I] is bool or graded relevance of the held-out items.
        ``history`` [B, I] bool marks each user's past items, and calibration
        needs it. A caller that updates several suites with the same batch can
        pass its category shares [B, C] as ``history_distribution`` instead.
        """
        lists = RankedLists.from_scores(scores, target, max(self.ks))
        if self.compute_auc:
            lists.extras["auc"] = auc(
                scores, lists.extras["target_items"], lists.extras["target_valid"], lists.num_rankable
            )
        if self.item_categories is not None:
            # One greedy ideal ordering serves alpha-NDCG at every K: its prefix at k is the ideal at k.
            target_items = lists.extras["target_items"]
            lists.extras["alpha_ideal_dcg"] = ideal_alpha_dcg_prefix(
                self.item_categories[target_items], lists.extras["target_valid"], lists.k, self.alpha
            )
            if history_distribution is not None:
                lists.extras["history"] = history_distribution
            elif history is not None:
                lists.extras["history"] = category_distribution(history, self.item_categories)
        empty = lists.num_relevant == 0
        if empty.any():
            if self.empty_target_action == "error":
                raise ValueError(f"{int(empty.sum())} user(s) have no held-out item and empty_target_action='error'")
            if self.empty_target_action == "skip":
                lists = lists.select(~empty)
        for metric in self.metrics.values():
            metric.update(lists)

    def compute(self) -> dict[str, torch.Tensor]:
        return {name: metric.compute() for name, metric in self.metrics.items()}

    def reset(self) -> None:
        for metric in self.metrics.values():
            metric.reset()
