"""Diversity metrics of each list as torchmetrics ``Metric``s; formulas in ``functional``."""

from __future__ import annotations

import torch

from lightning_divrec.metrics.base import MeanOverUsers
from lightning_divrec.metrics.functional import alpha_ndcg as alpha_functional
from lightning_divrec.metrics.functional import calibration as calibration_functional
from lightning_divrec.metrics.functional import diversity as F
from lightning_divrec.metrics.functional.ranking import RankedLists


class IntraListDiversity(MeanOverUsers):
    """ILD@K: mean over unordered pairs of the list of 1 - similarity.

    Similarity is Jaccard over category sets (``item_categories``) or cosine
    over item embeddings (``item_embeddings``); give exactly one. Range [0, 1]
    with categories and [0, 2] with embeddings; higher is more diverse. Lists
    with fewer than 2 items are skipped. After Ziegler et al., "Improving
    recommendation lists through topic diversification", WWW 2005.

    Args:
        item_categories: [I, C] bool multi-hot categories.
        item_embeddings: [I, D] item vectors.
    """

    uses_targets = False

    def __init__(self, k: int, item_categories: torch.Tensor | None = None, item_embeddings: torch.Tensor | None = None, **kwargs):
        super().__init__(k, **kwargs)
        if (item_categories is None) == (item_embeddings is None):
            raise ValueError("IntraListDiversity needs exactly one of item_categories and item_embeddings")
        self.by_categories = item_categories is not None
        features = item_categories.bool() if self.by_categories else item_embeddings.float()
        self.register_buffer("item_features", features, persistent=False)

    def per_user(self, lists: RankedLists) -> torch.Tensor:
        features = self.item_features[lists.items]
        similarity = F.jaccard_similarity(features) if self.by_categories else F.cosine_similarity(features)
        return F.intra_list_diversity(similarity, lists.valid)


class CategoryCoverage(MeanOverUsers):
    """Share of all categories covered by each list, averaged over users. Range [0, 1], higher is better."""

    uses_targets = False

    def __init__(self, k: int, item_categories: torch.Tensor, **kwargs):
        super().__init__(k, **kwargs)
        self.register_buffer("item_categories", item_categories.bool(), persistent=False)

    def per_user(self, lists: RankedLists) -> torch.Tensor:
        return F.category_coverage(self.item_categories, lists.items, lists.valid)


class AlphaNDCG(MeanOverUsers):
    """alpha-NDCG@K over categories: a relevant item gains (1 - alpha) per earlier relevant
    item of the same category, so repeating a category earns less. Range [0, 1], higher is better.

    The normaliser is the greedy ideal ordering of the user's held-out items.

    Args:
        item_categories: [I, C] bool.
        alpha: redundancy penalty in [0, 1] (default 0.5); 0 gives a category-weighted NDCG.
    """

    def __init__(self, k: int, item_categories: torch.Tensor, alpha: float = 0.5, **kwargs):
        super().__init__(k, **kwargs)
        if not 0 <= alpha <= 1:
            raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
        self.alpha = alpha
        self.register_buffer("item_categories", item_categories.bool(), persistent=False)

    def per_user(self, lists: RankedLists) -> torch.Tensor:
        targets = lists.extras["target_items"]
        # RankingMetricSuite computes the greedy ideal once for all its cut-offs,
        # with the suite's alpha, which is also every AlphaNDCG's alpha in it.
        ideal_prefix = lists.extras.get("alpha_ideal_dcg")
        values = alpha_functional.alpha_ndcg(
            self.item_categories[lists.items],
            (lists.gains > 0) & lists.valid,
            self.item_categories[targets],
            lists.extras["target_valid"],
            self.alpha,
            ideal=None if ideal_prefix is None else ideal_prefix[:, lists.k - 1],
        )
        return torch.where(lists.num_relevant > 0, values, torch.full_like(values, float("nan")))


class Calibration(MeanOverUsers):
    """Miscalibration@K: KL divergence (bits) between the category distribution of the user's
    history and that of the list, smoothed (Steck, RecSys 2018). 0 is calibrated; lower is better.

    Args:
        item_categories: [I, C] bool.
        smoothing: weight of the history mixed into the list distribution (default 0.01).
    """

    higher_is_better = False
    uses_targets = False

    def __init__(self, k: int, item_categories: torch.Tensor, smoothing: float = 0.01, **kwargs):
        super().__init__(k, **kwargs)
        self.smoothing = smoothing
        self.register_buffer("item_categories", item_categories.bool(), persistent=False)

    def per_user(self, lists: RankedLists) -> torch.Tensor:
        if "history" not in lists.extras:
            raise ValueError("Calibration needs each user's history: pass history= to RankingMetricSuite.update")
        list_categories = self.item_categories[lists.items] & lists.valid.unsqueeze(2)  # [B, K, C]
        per_item = list_categories.double() / list_categories.sum(dim=2, keepdim=True).clamp_min(1)
        mass = per_item.sum(dim=1)  # [B, C]
        recommended = mass / mass.sum(dim=1, keepdim=True).clamp_min(1e-300)
        return calibration_functional.calibration_kl(lists.extras["history"], recommended, self.smoothing)
