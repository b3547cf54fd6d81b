"""The sort-based AUC and the batched greedy alpha-NDCG ideal against the per-user definitions of ``reference``.

Random inputs with many ties, excluded items and, for AUC, held-out items
that are excluded too (score ``-inf``), which the suite never produces but
the kernel accepts.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lightning_divrec.metrics import RankingMetricSuite
from lightning_divrec.metrics.functional.alpha_ndcg import alpha_ndcg, ideal_alpha_dcg_prefix
from lightning_divrec.metrics.functional.ranking import RankedLists, held_out_items
from lightning_divrec.metrics.functional.relevance import auc
from tests import reference


def _scores_and_target(seed: int, users: int, items: int, levels: int, excluded_targets: bool):
    generator = torch.Generator().manual_seed(seed)
    scores = torch.randint(0, levels, (users, items), generator=generator).float()
    target = torch.rand(users, items, generator=generator) < 0.3
    excluded = torch.rand(users, items, generator=generator) < 0.3
    if not excluded_targets:
        excluded &= ~target
    scores[excluded] = float("-inf")
    return scores, target


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 100_000),
    users=st.integers(1, 9),
    items=st.integers(1, 30),
    levels=st.integers(1, 6),
    excluded_targets=st.booleans(),
    pass_rankable=st.booleans(),
)
def test_auc_matches_reference(seed, users, items, levels, excluded_targets, pass_rankable):
    scores, target = _scores_and_target(seed, users, items, levels, excluded_targets)
    target_items, target_valid = held_out_items(target)
    num_rankable = (scores > float("-inf")).sum(dim=1) if pass_rankable else None
    values = auc(scores, target_items, target_valid, num_rankable)
    for user in range(users):
        expected = reference.auc(scores[user].tolist(), target[user].tolist())
        if expected is None:
            assert math.isnan(values[user].item()), user
        else:
            assert values[user].item() == pytest.approx(expected, abs=1e-12), user


def test_auc_worked_example():
    # Items 0..4 score 3, 1, 2, 2, -inf; held out: items 0 and 2.
    # Negatives are items 1 and 3 (item 4 is excluded). Item 0 beats both: 2 wins.
    # Item 2 beats item 1 and ties item 3: 1.5 wins. AUC = 3.5 / (2 * 2).
    scores = torch.tensor([[3.0, 1.0, 2.0, 2.0, float("-inf")]])
    target = torch.tensor([[True, False, True, False, False]])
    target_items, target_valid = held_out_items(target)
    assert auc(scores, target_items, target_valid).item() == pytest.approx(3.5 / 4)


def _category_sets(categories: torch.Tensor) -> list[set[int]]:
    return [set(torch.nonzero(row).flatten().tolist()) for row in categories]


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 100_000),
    users=st.integers(1, 8),
    items=st.integers(1, 25),
    num_categories=st.integers(1, 5),
    k=st.integers(1, 12),
    alpha=st.sampled_from([0.0, 0.3, 0.5, 1.0]),
)
def test_ideal_prefix_matches_reference_at_every_cutoff(seed, users, items, num_categories, k, alpha):
    generator = torch.Generator().manual_seed(seed)
    categories = torch.rand(items, num_categories, generator=generator) < 0.4
    target = torch.rand(users, items, generator=generator) < 0.4
    target_items, target_valid = held_out_items(target)
    prefix = ideal_alpha_dcg_prefix(categories[target_items], target_valid, k, alpha)
    assert prefix.shape == (users, k)
    category_sets = _category_sets(categories)
    for user in range(users):
        relevant = set(torch.nonzero(target[user]).flatten().tolist())
        for cutoff in range(1, k + 1):
            expected = reference.ideal_alpha_dcg(relevant, category_sets, alpha, cutoff)
            assert prefix[user, cutoff - 1].item() == pytest.approx(expected, abs=1e-12), (user, cutoff)


@pytest.mark.parametrize("k", [1, 3, 7])
def test_suite_alpha_ndcg_matches_reference(k):
    generator = torch.Generator().manual_seed(k)
    users, items = 20, 18
    scores = torch.randint(0, 5, (users, items), generator=generator).float()
    target = torch.rand(users, items, generator=generator) < 0.35
    categories = torch.rand(items, 4, generator=generator) < 0.45
    suite = RankingMetricSuite([k, k + 2], items, item_categories=categories, alpha=0.3)
    suite.update(scores, target, history=torch.zeros_like(target))
    result = suite.compute()
    category_sets = _category_sets(categories)
    for cutoff in (k, k + 2):
        values = []
        for user in range(users):
            relevant = set(torch.nonzero(target[user]).flatten().tolist())
            if not relevant:
                continue
            ranked = reference.ranked_list(scores[user].tolist(), cutoff)
            value = reference.alpha_ndcg(ranked, relevant, category_sets, 0.3, cutoff)
            if value is not None:
                values.append(value)
        assert result[f"alpha_ndcg@{cutoff}"].item() == pytest.approx(sum(values) / len(values), abs=1e-12), cutoff


def test_alpha_ndcg_with_and_without_given_ideal():
    generator = torch.Generator().manual_seed(3)
    scores = torch.randn(6, 10, generator=generator)
    target = torch.rand(6, 10, generator=generator) < 0.5
    target[:, 0] = True
    categories = torch.rand(10, 3, generator=generator) < 0.5
    categories[:, 0] = True
    lists = RankedLists.from_scores(scores, target, 4)
    arguments = (
        categories[lists.items],
        (lists.gains > 0) & lists.valid,
        categories[lists.extras["target_items"]],
        lists.extras["target_valid"],
        0.5,
    )
    ideal = ideal_alpha_dcg_prefix(arguments[2], arguments[3], 4, 0.5)[:, 3]
    computed_here = alpha_ndcg(*arguments)
    given_ideal = alpha_ndcg(*arguments, ideal=ideal)
    assert torch.equal(computed_here, given_ideal)
