"""Ranking metrics: pure kernels in ``functional``, torchmetrics wrappers, and the suite."""

from lightning_divrec.metrics.diversity import CatalogCoverage, GiniIndex, IntraListDiversity, Novelty, ShannonEntropy
from lightning_divrec.metrics.functional.ranking import RankedLists, topk_indices
from lightning_divrec.metrics.relevance import F1, MAP, MRR, NDCG, EvaluatedUsers, HitRate, Precision, Recall
from lightning_divrec.metrics.suite import RankingMetricSuite

__all__ = [
    "CatalogCoverage", "EvaluatedUsers", "F1", "GiniIndex", "HitRate", "IntraListDiversity", "MAP", "MRR",
    "NDCG", "Novelty", "Precision", "RankedLists", "RankingMetricSuite", "Recall", "ShannonEntropy",
    "topk_indices",
]
