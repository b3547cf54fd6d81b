"""Properties of the whole suite on random inputs: ranges, order invariance, k = 1."""

from __future__ import annotations

import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning_divrec.metrics import RankingMetricSuite

UNIT_RANGE = (
    "auc", "recall", "precision", "f1", "ndcg", "mrr", "hit", "map", "coverage", "gini", "personalization",
    "ild", "category_coverage", "alpha_ndcg", "serendipity", "tail_share",
)


def _inputs(seed: int, users: int, items: int):
    generator = torch.Generator().manual_seed(seed)
    scores = torch.randint(0, 4, (users, items), generator=generator).float()
    history = torch.rand(users, items, generator=generator) < 0.3
    target = (torch.rand(users, items, generator=generator) < 0.2) & ~history
    target[:, 0] |= ~target.any(dim=1) & ~history[:, 0]
    scores[history] = float("-inf")
    categories = torch.rand(items, 3, generator=generator) < 0.5
    counts = torch.randint(0, 10, (items,), generator=generator)
    return scores, target, history, categories, counts


def _suite(k: int, items: int, categories, counts) -> RankingMetricSuite:
    return RankingMetricSuite(
        [k], items, item_categories=categories, item_popularity=counts, num_users=10, item_interactions=counts
    )


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), users=st.integers(2, 12), items=st.integers(2, 15), k=st.integers(1, 20))
def test_values_within_stated_ranges(seed, users, items, k):
    scores, target, history, categories, counts = _inputs(seed, users, items)
    suite = _suite(k, items, categories, counts)
    suite.update(scores, target, history=history)
    for name, value in suite.compute().items():
        value = value.item()
        base = name.split("@")[0]
        if math.isnan(value):
            # Only lists without an item pair, or users without any held-out item, give NaN.
            assert base in ("ild", "auc", "alpha_ndcg", "calibration", "personalization") or suite.compute()["users"] == 0, name
            continue
        if base in UNIT_RANGE:
            assert -1e-12 <= value <= 1 + 1e-12, (name, value)
        elif base == "entropy":
            assert 0 <= value <= math.log2(items) + 1e-9, (name, value)
        elif base in ("calibration", "novelty", "novelty_interactions", "avg_popularity"):
            assert value >= -1e-12, (name, value)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), split_at=st.integers(1, 11), k=st.integers(1, 6))
def test_invariant_to_user_order_and_batches(seed, split_at, k):
    scores, target, history, categories, counts = _inputs(seed, 12, 10)
    order = torch.randperm(12, generator=torch.Generator().manual_seed(seed + 1))
    whole, parts = _suite(k, 10, categories, counts), _suite(k, 10, categories, counts)
    whole.update(scores, target, history=history)
    for rows in (order[:split_at], order[split_at:]):
        parts.update(scores[rows], target[rows], history=history[rows])
    expected, observed = whole.compute(), parts.compute()
    for name, value in expected.items():
        if math.isnan(value.item()):
            assert math.isnan(observed[name].item()), name
        else:
            assert abs(observed[name].item() - value.item()) < 1e-9, name
