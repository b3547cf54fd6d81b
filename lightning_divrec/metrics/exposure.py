"""Catalogue-level metrics as torchmetrics ``Metric``s, from exposure counts summed over all lists."""

from __future__ import annotations

import torch

from lightning_divrec.metrics.base import ExposureMetric
from lightning_divrec.metrics.functional import exposure as F
from lightning_divrec.metrics.functional.ranking import RankedLists


class CatalogCoverage(ExposureMetric):
    """Share of the catalogue that appears in at least one top-K list. Range [0, 1], higher is better."""

    higher_is_better = True

    def compute(self) -> torch.Tensor:
        return F.catalog_coverage(self.counts)


class GiniIndex(ExposureMetric):
    """Gini index of item exposure over the whole catalogue. Range [0, 1], lower is more even."""

    higher_is_better = False

    def compute(self) -> torch.Tensor:
        return F.gini_index(self.counts)


class ShannonEntropy(ExposureMetric):
    """Shannon entropy (bits) of item exposure. Range [0, log2 I], higher is more even."""

    higher_is_better = True

    def compute(self) -> torch.Tensor:
        return F.shannon_entropy(self.counts)


class Personalization(ExposureMetric):
    """1 - mean overlap |L_u & L_v| / K over all pairs of users' lists. Range [0, 1], higher is better.

    Exact under DDP from the summed exposure counts and list count (no
    pairwise comparison of lists is stored).
    """

    higher_is_better = True
    num_lists: torch.Tensor

    def __init__(self, k: int, num_items: int, **kwargs):
        super().__init__(k, num_items, **kwargs)
        self.add_state("num_lists", torch.tensor(0, dtype=torch.int64), dist_reduce_fx="sum")

    def update(self, lists: RankedLists) -> None:
        super().update(lists)
        self.num_lists += lists.items.shape[0]

    def compute(self) -> torch.Tensor:
        return F.personalization(self.counts, int(self.num_lists), min(self.k, self.num_items))
