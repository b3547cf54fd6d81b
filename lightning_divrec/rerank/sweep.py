"""Sweep the trade-off knob of every re-ranker and find the relevance/diversity Pareto front.

Legend: B users, I items, M candidates per user, K list length.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Iterable, Sequence

import torch

from lightning_divrec.metrics import RankingMetricSuite
from lightning_divrec.metrics.functional.calibration import category_distribution
from lightning_divrec.rerank.rerank import Candidates, rerank

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepPoint:
    method: str
    trade_off: float


def sweep_points(methods: Sequence[str], grid: Sequence[float]) -> list[SweepPoint]:
    """Return the "none" point plus every method at every grid value above 0 (0 equals "none")."""
    points = [SweepPoint("none", 0.0)]
    for method in methods:
        points.extend(SweepPoint(method, float(value)) for value in grid if value > 0)
    return points


def lists_as_scores(lists: torch.Tensor, num_items: int) -> torch.Tensor:
    """Turn ranked item lists [B, K] (-1 for empty slots) into scores [B, I] that rank them first.

    The item at rank r gets K - r; every other item gets -inf, so the metric
    suite ranks exactly these lists.
    """
    batch, k = lists.shape
    scores = torch.full((batch, num_items + 1), float("-inf"), device=lists.device)
    ranks = torch.arange(k, 0, -1, device=lists.device, dtype=scores.dtype).expand(batch, -1)
    scores.scatter_(1, torch.where(lists >= 0, lists, num_items), ranks)
    return scores[:, :num_items]


@torch.no_grad()
def run_sweep(
    model,
    batches: Iterable[dict[str, torch.Tensor]],
    datamodule,
    methods: Sequence[str],
    grid: Sequence[float],
    num_candidates: int = 200,
    k: int = 10,
    similarity: str = "categories",
) -> list[dict[str, float | str]]:
    """Re-rank every evaluated user's top candidates at each sweep point and compute the metric suite.

    ``batches`` are evaluation batches of the data module (users, targets,
    exclusions). Returns one row per point: ``method``, ``trade_off`` and
    every metric at ``k`` (AUC excluded: re-ranked lists have no full ranking).

    ``similarity`` is what MMR and DPP call similar: ``categories`` (Jaccard
    of genres) or ``embeddings`` (cosine of the model's item vectors, which
    also adds ``ild_cosine@k`` to the metrics).
    """
    points = sweep_points(methods, grid)
    categories = datamodule.item_categories
    model.eval()
    model.prepare_scoring()
    embeddings = None
    if similarity == "embeddings":
        embeddings = model.item_embeddings()
        if embeddings is None:
            raise ValueError(f"{type(model).__name__} has no item embeddings; use rerank.similarity=categories")
        embeddings = embeddings.detach().float().cpu()
    suites = {
        point: RankingMetricSuite(
            [k],
            datamodule.num_items,
            item_categories=categories,
            item_popularity=datamodule.item_popularity,
            num_users=datamodule.num_users,
            item_interactions=datamodule.item_interaction_counts,
            item_embeddings=embeddings,
            compute_auc=False,
        )
        for point in points
    }
    for batch in batches:
        scores = model.score(batch["users"]).to(torch.float32, copy=True)  # [B, I]
        history = torch.zeros_like(scores, dtype=torch.bool)
        history[batch["exclude_rows"], batch["exclude_items"]] = True
        scores.masked_fill_(history, float("-inf"))
        target = torch.zeros_like(scores, dtype=torch.bool)
        target[batch["target_rows"], batch["target_items"]] = True
        history_distribution = category_distribution(history, categories)  # [B, C], shared by every point
        candidates = Candidates.from_scores(
            scores, num_candidates, item_categories=categories, item_embeddings=embeddings,
            history_distribution=history_distribution,
        )
        for point, suite in suites.items():
            lists = rerank(point.method, candidates, k, point.trade_off)
            suite.update(lists_as_scores(lists, datamodule.num_items), target, history_distribution=history_distribution)
    model.finish_scoring()
    rows = []
    for point, suite in suites.items():
        values = {name: float(value) for name, value in suite.compute().items()}
        rows.append({"method": point.method, "trade_off": point.trade_off} | values)
        log.info("re-rank %s at %.2f: ndcg@%d %.4f", point.method, point.trade_off, k, values[f"ndcg@{k}"])
    return rows


def pareto_front(rows: Sequence[dict], relevance_key: str, diversity_key: str) -> list[int]:
    """Return the indices of rows that no other row beats on both keys, by descending relevance."""
    front = []
    for index, row in enumerate(rows):
        dominated = any(
            other[relevance_key] >= row[relevance_key]
            and other[diversity_key] >= row[diversity_key]
            and (other[relevance_key] > row[relevance_key] or other[diversity_key] > row[diversity_key])
            for other in rows
        )
        if not dominated:
            front.append(index)
    return sorted(front, key=lambda index: -rows[index][relevance_key])


def knee_point(rows: Sequence[dict], front: Sequence[int], relevance_key: str, diversity_key: str) -> int:
    """Return the front point farthest from the line joining the front's two ends, both axes scaled to [0, 1]."""
    if len(front) <= 2:
        return front[0]
    relevance = torch.tensor([rows[index][relevance_key] for index in front], dtype=torch.float64)
    diversity = torch.tensor([rows[index][diversity_key] for index in front], dtype=torch.float64)

    def scaled(values: torch.Tensor) -> torch.Tensor:
        span = values.max() - values.min()
        return (values - values.min()) / span if span > 0 else torch.zeros_like(values)

    x, y = scaled(relevance), scaled(diversity)
    start, end = torch.stack([x[0], y[0]]), torch.stack([x[-1], y[-1]])
    direction = (end - start) / torch.linalg.norm(end - start).clamp_min(1e-12)
    offsets = torch.stack([x, y], dim=1) - start
    distance = (offsets[:, 0] * direction[1] - offsets[:, 1] * direction[0]).abs()
    return front[int(distance.argmax())]
