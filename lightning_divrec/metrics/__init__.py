"""Ranking metrics: pure kernels in ``functional``, torchmetrics wrappers, and the suite."""

from lightning_divrec.metrics.diversity import AlphaNDCG, Calibration, CategoryCoverage, IntraListDiversity
from lightning_divrec.metrics.exposure import CatalogCoverage, GiniIndex, Personalization, ShannonEntropy
from lightning_divrec.metrics.functional.ranking import RankedLists, topk_indices
from lightning_divrec.metrics.popularity import AveragePopularity, Novelty, Serendipity, TailShare
from lightning_divrec.metrics.relevance import AUC, F1, MAP, MRR, NDCG, EvaluatedUsers, HitRate, Precision, Recall
from lightning_divrec.metrics.suite import RankingMetricSuite

__all__ = [
    "AUC", "AlphaNDCG", "AveragePopularity", "Calibration", "CatalogCoverage", "CategoryCoverage",
    "EvaluatedUsers", "F1", "GiniIndex", "HitRate", "IntraListDiversity", "MAP", "MRR", "NDCG", "Novelty",
    "Personalization", "Precision", "RankedLists", "RankingMetricSuite", "Recall", "Serendipity",
    "ShannonEntropy", "TailShare", "topk_indices",
]
