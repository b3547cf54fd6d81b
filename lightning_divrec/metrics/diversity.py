"""Beyond-accuracy metrics as torchmetrics ``Metric``s; formulas in ``functional.diversity``."""

from __future__ import annotations

import torch

from lightning_divrec.metrics.base import ExposureMetric, MeanOverUsers
from lightning_divrec.metrics.functional import diversity as F
from lightning_divrec.metrics.functional.ranking import RankedLists


class IntraListDiversity(MeanOverUsers):
    """ILD@K: mean over unordered pairs of 1 - Jaccard similarity of the items' categories.

    Range [0, 1], higher is more diverse. Lists with fewer than 2 items are
    skipped. Jaccard over categories, as in Ziegler et al. (WWW 2005) with
    a category-set similarity in place of their taxonomy one.

    Args:
        item_categories: [I, C] bool multi-hot categories of every item.
    """

    uses_targets = False

    def __init__(self, k: int, item_categories: torch.Tensor, **kwargs):
        super().__init__(k, **kwargs)
        self.register_buffer("item_categories", item_categories.bool(), persistent=False)

    def per_user(self, lists: RankedLists) -> torch.Tensor:
        similarity = F.jaccard_similarity(self.item_categories[lists.items])
        return F.intra_list_diversity(similarity, lists.valid)


class Novelty(MeanOverUsers):
    """Novelty@K: mean self-information -log2 p(i) in bits of list items, p(i) the share of
    training users who interacted with i (Zhou et al., PNAS 2010). Higher is more novel.

    Args:
        item_popularity: [I] training users per item.
        num_users: users in the training data.
    """

    uses_targets = False

    def __init__(self, k: int, item_popularity: torch.Tensor, num_users: int, **kwargs):
        super().__init__(k, **kwargs)
        self.register_buffer("self_information", F.self_information(item_popularity, num_users), persistent=False)

    def per_user(self, lists: RankedLists) -> torch.Tensor:
        return F.novelty(lists.items, lists.valid, self.self_information)


class CatalogCoverage(ExposureMetric):
    """Share of the catalogue that appears in at least one top-K list. Range [0, 1], higher is better."""

    higher_is_better = True

    def compute(self) -> torch.Tensor:
        return F.catalog_coverage(self.counts)


class GiniIndex(ExposureMetric):
    """Gini index of item exposure in the top-K lists. Range [0, 1], lower is more even."""

    higher_is_better = False

    def compute(self) -> torch.Tensor:
        return F.gini_index(self.counts)


class ShannonEntropy(ExposureMetric):
    """Shannon entropy (bits) of item exposure in the top-K lists. Range [0, log2 I], higher is more even."""

    higher_is_better = True

    def compute(self) -> torch.Tensor:
        return F.shannon_entropy(self.counts)
