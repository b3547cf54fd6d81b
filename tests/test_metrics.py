"""Metric kernels and the suite against the per-user reference and hand-worked cases."""

from __future__ import annotations

import math

import pytest
import torch

from lightning_divrec.metrics import (
    MRR,
    NDCG,
    CatalogCoverage,
    GiniIndex,
    HitRate,
    Precision,
    RankedLists,
    RankingMetricSuite,
    Recall,
    ShannonEntropy,
    topk_indices,
)
from lightning_divrec.metrics.functional import diversity, exposure, relevance

from . import reference

D = [None] + [1 / math.log2(r + 1) for r in range(1, 11)]  # D[r] = 1 / log2(r + 1)
NEG_INF = float("-inf")


def lists_for(scores, target, k):
    return RankedLists.from_scores(torch.tensor(scores, dtype=torch.float32), torch.tensor(target, dtype=torch.float64), k)


def metric_value(metric, scores, target):
    metric.update(RankedLists.from_scores(torch.tensor(scores), torch.tensor(target, dtype=torch.float64), metric.k))
    return metric.compute().item()


# ----- tie rule and ranking ---------------------------------------------------------------


def test_topk_ties_by_lower_index():
    scores = torch.tensor([[0.5, 0.9, 0.5, 0.9, 0.1, 0.5]])
    assert topk_indices(scores, 4).tolist() == [[1, 3, 0, 2]]
    assert topk_indices(scores, 2).tolist() == [[1, 3]]


def test_topk_all_equal_scores():
    assert topk_indices(torch.zeros(2, 7), 3).tolist() == [[0, 1, 2], [0, 1, 2]]


def test_topk_matches_reference_random():
    generator = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 5, (50, 30), generator=generator).float()  # many ties
    for k in (1, 5, 30, 40):
        expected = [reference.ranked_list(row.tolist(), k) for row in scores]
        assert topk_indices(scores, k).tolist() == expected


# ----- C02: ideal DCG from all held-out judgments ------------------------------------------


def test_ndcg_ideal_from_all_labels():
    scores, target = [[0.1, 0.2, 0.3, 4, 70]], [[10, 0, 0, 1, 5]]
    assert relevance.ndcg(lists_for(scores, target, 3)).item() == pytest.approx(0.412382, abs=1e-6)
    assert relevance.ndcg(lists_for(scores, target, 5)).item() == pytest.approx(9.499458 / 13.654649, abs=1e-6)


def test_ndcg_graded_judged_not_returned():
    # D1..D6 returned in that order with gains [3,2,3,0,1,2]; D7=3 and D8=2 judged but ranked last.
    scores = [[8, 7, 6, 5, 4, 3, 0, 0]]
    target = [[3, 2, 3, 0, 1, 2, 3, 2]]
    assert relevance.ndcg(lists_for(scores, target, 6)).item() == pytest.approx(6.861127 / 8.740262, abs=1e-6)
    assert relevance.ndcg(lists_for(scores, target, 6)).item() == pytest.approx(0.785002, abs=1e-6)


def test_ndcg_five_relevant_one_returned():
    # Only one relevant item can be ranked because the others are excluded (-inf), so the list has 1 item.
    scores = [[1.0, NEG_INF, NEG_INF, NEG_INF, NEG_INF]]
    target = [[1, 1, 1, 1, 1]]
    assert relevance.ndcg(lists_for(scores, target, 10)).item() == pytest.approx(1 / 2.948459, abs=1e-6)


def test_ndcg_five_relevant_at_ranks_6_to_10():
    scores = [[10 - r for r in range(10)]]
    target = [[0, 0, 0, 0, 0, 1, 1, 1, 1, 1]]
    assert relevance.ndcg(lists_for(scores, target, 10)).item() == pytest.approx(1.595100 / 2.948459, abs=1e-6)


# ----- C04: cut-off beyond the list, empty targets, Recall and Precision rules -------------

# Queries of different lengths are padded with excluded items (-inf score, no gain).
C04A_SCORES = [[0.2, 0.3, 0.5, NEG_INF], [0.1, 0.3, 0.5, 0.2]]
C04A_TARGET = [[0, 0, 1, 0], [0, 1, 0, 1]]


@pytest.mark.parametrize("k, expected", [(1, 0.5), (2, (1 + D[2] / (D[1] + D[2])) / 2), (4, 0.846713), (5, 0.846713), (10, 0.846713)])
def test_ndcg_cutoffs(k, expected):
    assert metric_value(NDCG(k), C04A_SCORES, C04A_TARGET) == pytest.approx(expected, abs=1e-6)


def test_precision_fixed_and_adjusted():
    scores, target = [[0.0] * 5], [[1, 1, 1, 1, 0]]
    assert metric_value(Precision(10), scores, target) == pytest.approx(4 / 10)
    assert metric_value(Precision(10, adjusted=True), scores, target) == pytest.approx(4 / 5)


@pytest.mark.parametrize("action, expected", [("skip", 0.5), ("zero", 0.25), ("one", 0.75)])
@pytest.mark.parametrize("metric_class", [MRR, NDCG, Recall])
def test_empty_target_policy(metric_class, action, expected):
    scores = [[0.9, 0.8, 0.1], [0.9, 0.8, 0.1]]
    target = [[0, 1, 0], [0, 0, 0]]
    metric = metric_class(3, empty_target_action=action)
    if metric_class is NDCG:
        expected_first = D[2]
    elif metric_class is Recall:
        expected_first = 1.0
    else:
        expected_first = 0.5
    fill = {"skip": None, "zero": 0.0, "one": 1.0}[action]
    values = [expected_first] + ([] if fill is None else [fill])
    assert metric_value(metric, scores, target) == pytest.approx(sum(values) / len(values))
    if metric_class is MRR:
        assert metric_value(MRR(3, empty_target_action=action), scores, target) == pytest.approx(expected)


def test_empty_target_error():
    with pytest.raises(ValueError, match="no held-out item"):
        metric_value(MRR(3, empty_target_action="error"), [[0.9, 0.8, 0.1]], [[0, 0, 0]])


def test_empty_target_never_counts_as_hit():
    # top-1 of an all-zero target must not count as a relevant first rank.
    assert metric_value(MRR(3, empty_target_action="zero"), [[0.9, 0.8, 0.1]], [[0, 0, 0]]) == 0.0


def test_recall_capped_and_hit_at_1():
    scores, target = [[0.9, 0.8, 0.7, 0.6, 0.5]], [[1, 0, 1, 1, 1]]
    assert metric_value(Recall(1), scores, target) == pytest.approx(0.25)
    assert metric_value(Recall(1, capped=True), scores, target) == pytest.approx(1.0)
    assert metric_value(HitRate(1), scores, target) == 1.0
    assert metric_value(MRR(1), scores, target) == 1.0


# ----- C05: intra-list and catalogue diversity ---------------------------------------------


def test_ild_mean_over_unordered_pairs():
    similarity = torch.tensor([[[1.0, 0.9, 0.3], [0.9, 1.0, 0.6], [0.3, 0.6, 1.0]]])
    valid = torch.ones(1, 3, dtype=torch.bool)
    assert diversity.intra_list_diversity(similarity, valid).item() == pytest.approx(0.4)
    orthogonal = diversity.cosine_similarity(torch.eye(3).unsqueeze(0))
    assert diversity.intra_list_diversity(orthogonal, valid).item() == pytest.approx(1.0)


def test_ild_single_item_is_skipped():
    value = diversity.intra_list_diversity(torch.ones(1, 1, 1), torch.ones(1, 1, dtype=torch.bool))
    assert math.isnan(value.item())


def test_catalogue_coverage_entropy_gini():
    counts = torch.tensor([2, 1, 1, 0])
    assert exposure.catalog_coverage(counts).item() == pytest.approx(0.75)
    assert exposure.shannon_entropy(counts).item() == pytest.approx(1.5)
    assert exposure.gini_index(counts).item() == pytest.approx(0.375)


def test_exposure_metrics_from_lists():
    # Lists [A, B] and [A, C] over catalogue {A, B, C, D}: A twice, B and C once, D never.
    scores = [[4.0, 3.0, 1.0, 0.0], [4.0, 1.0, 3.0, 0.0]]
    target = [[1, 0, 0, 0], [1, 0, 0, 0]]
    assert metric_value(CatalogCoverage(2, 4), scores, target) == pytest.approx(0.75)
    assert metric_value(ShannonEntropy(2, 4), scores, target) == pytest.approx(1.5)
    assert metric_value(GiniIndex(2, 4), scores, target) == pytest.approx(0.375)


# ----- against the per-user reference on random inputs -------------------------------------


def _random_batch(seed: int, users: int = 40, items: int = 25):
    generator = torch.Generator().manual_seed(seed)
    scores = torch.randint(0, 6, (users, items), generator=generator).float()
    scores[torch.rand(users, items, generator=generator) < 0.3] = NEG_INF
    target = (torch.rand(users, items, generator=generator) < 0.15) & (scores > NEG_INF)
    target[0] = False  # a user without held-out items
    return scores, target


@pytest.mark.parametrize("k", [1, 3, 10, 30])
def test_relevance_matches_reference(k):
    scores, target = _random_batch(k)
    lists = RankedLists.from_scores(scores, target, k)
    kernels = {
        "recall": relevance.recall(lists),
        "recall_capped": relevance.recall(lists, capped=True),
        "precision": relevance.precision(lists, k),
        "precision_adjusted": relevance.precision(lists, k, adjusted=True),
        "f1": relevance.f1(lists, k),
        "ndcg": relevance.ndcg(lists),
        "mrr": relevance.reciprocal_rank(lists),
        "hit": relevance.hit_rate(lists),
        "map": relevance.average_precision(lists),
    }
    for user in range(len(scores)):
        if not target[user].any():
            assert all(math.isnan(values[user].item()) for values in kernels.values())
            continue
        expected = reference.per_user(scores[user].tolist(), target[user].double().tolist(), k)
        for name, values in kernels.items():
            assert values[user].item() == pytest.approx(expected[name], abs=1e-9), (name, user)


@pytest.mark.parametrize("k", [1, 2, 5, 10])
def test_suite_matches_reference(k):
    scores, target = _random_batch(100 + k)
    num_users, num_items, num_categories = len(scores), scores.shape[1], 4
    generator = torch.Generator().manual_seed(k)
    categories = torch.rand(num_items, num_categories, generator=generator) < 0.4
    popularity = torch.randint(0, 30, (num_items,), generator=generator)
    interactions = popularity * 3 + torch.randint(0, 3, (num_items,), generator=generator)
    history = scores == NEG_INF  # the excluded items are the user's history
    suite = RankingMetricSuite(
        [k], num_items, item_categories=categories, item_popularity=popularity, num_users=30,
        item_interactions=interactions,
    )
    for start in range(0, num_users, 7):  # several batches
        rows = slice(start, start + 7)
        suite.update(scores[rows], target[rows], history=history[rows])
    result = suite.compute()

    category_sets = [{c for c in range(num_categories) if categories[item, c]} for item in range(num_items)]
    most_popular = set(reference.ranked_list(interactions.double().tolist(), k))
    head = set(reference.ranked_list(interactions.double().tolist(), math.ceil(0.2 * num_items)))
    total_interactions = int(interactions.sum())
    per_metric: dict[str, list[float]] = {}
    exposure_counts = [0] * num_items
    all_lists = []

    def add(name, value):
        if value is not None:
            per_metric.setdefault(name, []).append(value)

    for user in range(num_users):
        if not target[user].any():
            continue
        user_scores = scores[user].tolist()
        values = reference.per_user(user_scores, target[user].double().tolist(), k)
        for name in ("recall", "precision", "f1", "ndcg", "mrr", "hit", "map"):
            add(name, values[name])
        ranked = reference.ranked_list(user_scores, k)
        relevant = {item for item in range(num_items) if target[user, item]}
        all_lists.append(ranked)
        add("auc", reference.auc(user_scores, target[user].tolist()))
        add("ild", reference.jaccard_ild(ranked, category_sets))
        add("category_coverage", reference.category_coverage(ranked, category_sets, num_categories))
        add("alpha_ndcg", reference.alpha_ndcg(ranked, relevant, category_sets, 0.5, k))
        history_items = [item for item in range(num_items) if history[user, item]]
        add("calibration", reference.calibration(history_items, ranked, category_sets, num_categories, 0.01))
        if ranked:
            mean = lambda value: sum(value(item) for item in ranked) / len(ranked)
            add("novelty", mean(lambda item: -math.log2(max(int(popularity[item]), 1) / 30)))
            add("novelty_interactions", mean(lambda item: -math.log2(max(int(interactions[item]), 1) / total_interactions)))
            add("tail_share", mean(lambda item: float(item not in head)))
            add("avg_popularity", mean(lambda item: float(interactions[item])))
        add("serendipity", sum(1 for item in ranked if item in relevant and item not in most_popular) / k)
        for item in ranked:
            exposure_counts[item] += 1

    assert result["users"].item() == len(all_lists)
    assert set(per_metric) | {"users", "ild", "coverage", "gini", "entropy", "personalization"} == {
        name.split("@")[0] for name in result
    }
    for name, values in per_metric.items():
        key = name if name == "auc" else f"{name}@{k}"
        assert result[key].item() == pytest.approx(sum(values) / len(values), abs=1e-9), name
    if k == 1:  # no item pair for ILD
        assert math.isnan(result["ild@1"].item())
    assert result[f"coverage@{k}"].item() == pytest.approx(sum(1 for c in exposure_counts if c) / num_items)
    assert result[f"gini@{k}"].item() == pytest.approx(reference.gini(exposure_counts), abs=1e-9)
    assert result[f"entropy@{k}"].item() == pytest.approx(reference.entropy(exposure_counts), abs=1e-9)
    assert result[f"personalization@{k}"].item() == pytest.approx(reference.personalization(all_lists, k), abs=1e-9)


def test_suite_invariant_to_user_order():
    scores, target = _random_batch(7)
    permutation = torch.randperm(len(scores), generator=torch.Generator().manual_seed(1))
    first, second = RankingMetricSuite([5], scores.shape[1]), RankingMetricSuite([5], scores.shape[1])
    first.update(scores, target)
    second.update(scores[permutation][:13], target[permutation][:13])
    second.update(scores[permutation][13:], target[permutation][13:])
    for name, value in first.compute().items():
        assert second.compute()[name].item() == pytest.approx(value.item(), abs=1e-12), name


def test_ideal_list_scores_one():
    target = torch.zeros(3, 8, dtype=torch.bool)
    target[0, [1, 2]] = True
    target[1, [7]] = True
    target[2, [0, 3, 4, 5]] = True
    suite = RankingMetricSuite([4], 8)
    suite.update(target.float(), target)
    result = suite.compute()
    for name in ("ndcg@4", "mrr@4", "hit@4", "map@4", "recall@4"):
        assert result[name].item() == pytest.approx(1.0), name


def test_nan_scores_rejected():
    with pytest.raises(ValueError, match="NaN"):
        RankedLists.from_scores(torch.tensor([[float("nan"), 1.0]]), torch.tensor([[True, False]]), 1)
