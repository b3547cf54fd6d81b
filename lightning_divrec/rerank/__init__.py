"""Diversity re-ranking of each user's top candidates: MMR (highest or mean redundancy), DPP and calibration,
batched on the device."""

from lightning_divrec.rerank.calibration import calibrate
from lightning_divrec.rerank.common import fill_by_relevance, scale_relevance
from lightning_divrec.rerank.dpp import dpp_greedy, dpp_kernel
from lightning_divrec.rerank.mmr import mmr
from lightning_divrec.rerank.rerank import RERANKERS, Candidates, rerank

__all__ = [
    "RERANKERS", "Candidates", "calibrate", "dpp_greedy", "dpp_kernel", "fill_by_relevance", "mmr", "rerank",
    "scale_relevance",
]
