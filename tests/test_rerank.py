"""Re-rankers against hand-worked DPP cases and simple per-user references."""

from __future__ import annotations

import math

import pytest
import torch

from lightning_divrec.rerank import Candidates, calibrate, dpp_greedy, dpp_kernel, fill_by_relevance, mmr, rerank


# ----- DPP: hand-worked cases -----------------------------------------------------------------


def test_dpp_near_duplicates_order():
    quality = torch.tensor([1.0, 0.9, 0.5])
    similarity = torch.tensor([[1, 0.95, 0], [0.95, 1, 0], [0, 0, 1.0]])
    kernel = quality[:, None] * similarity * quality[None, :]
    picks = dpp_greedy(kernel.unsqueeze(0), 3)
    assert picks.tolist() == [[0, 2, 1]]
    assert torch.det(kernel[[0, 2]][:, [0, 2]]).item() == pytest.approx(0.25)
    assert torch.det(kernel).item() == pytest.approx(0.01974375, abs=1e-7)


def test_dpp_exact_duplicate_stops():
    kernel = torch.tensor([[[1.0, 1, 0], [1, 1, 0], [0, 0, 1]]])
    assert dpp_greedy(kernel, 3).tolist() == [[0, 2, -1]]


def test_dpp_float32_rounding_no_nan():
    # Unit vectors whose float32 Gram matrix rounds a duplicate's residual to a tiny negative number.
    vectors = torch.nn.functional.normalize(torch.tensor([[0.1, 0.7, 0.3], [0.1, 0.7, 0.3000001], [0.9, -0.1, 0.2]]), dim=1)
    kernel = (vectors @ vectors.T).float().unsqueeze(0)
    picks = dpp_greedy(kernel, 3)
    assert picks[0, :2].tolist() == [0, 2]
    assert picks[0, 2].item() in (-1, 1)
    assert not torch.isnan(picks.float()).any()


def test_dpp_non_psd_kernel_stops():
    kernel = torch.tensor([[[1.0, 2.0], [2.0, 1.0]]])
    assert dpp_greedy(kernel, 2).tolist() == [[0, -1]]


def test_dpp_first_pick_tie_lowest_index():
    kernel = torch.eye(3).unsqueeze(0)
    assert dpp_greedy(kernel, 1).tolist() == [[0]]


def test_fill_completes_stopped_list():
    picks = torch.tensor([[0, 2, -1], [1, -1, -1]])
    valid = torch.tensor([[True, True, True], [True, True, False]])
    assert fill_by_relevance(picks, 3, valid).tolist() == [[0, 2, 1], [1, 0, -1]]


# ----- per-user references ----------------------------------------------------------------------


def reference_mmr(relevance, similarity, k, w, redundancy="max"):
    chosen = []
    while len(chosen) < k:
        best, best_value = None, -math.inf
        for item in range(len(relevance)):
            if item in chosen:
                continue
            similarities = [similarity[item][other] for other in chosen]
            if not similarities:
                redundancy_value = 0.0
            elif redundancy == "max":
                redundancy_value = max(similarities)
            else:
                redundancy_value = sum(similarities) / len(similarities)
            value = (1 - w) * relevance[item] - w * redundancy_value
            if value > best_value:
                best, best_value = item, value
        chosen.append(best)
    return chosen


def reference_dpp(kernel, k, epsilon=1e-10):
    """Greedy by direct determinants: add the item with the largest det(L_S+i) / det(L_S)."""
    kernel = kernel.double()
    chosen = []
    current = 1.0
    while len(chosen) < k:
        best, best_gain = None, -math.inf
        for item in range(kernel.shape[0]):
            if item in chosen:
                continue
            index = chosen + [item]
            gain = torch.det(kernel[index][:, index]).item() / current
            if gain > best_gain + 1e-12:
                best, best_gain = item, gain
        if best_gain < epsilon:
            break
        chosen.append(best)
        current *= best_gain
    return chosen


def reference_calibration(relevance, categories, history, k, w, smoothing=0.01):
    def kl(items):
        mass = [0.0] * len(history)
        for item in items:
            count = sum(categories[item])
            for c, flag in enumerate(categories[item]):
                if flag:
                    mass[c] += 1 / count
        total = sum(mass)
        q = [m / total if total else 0.0 for m in mass]
        return sum(p * math.log2(p / ((1 - smoothing) * qc + smoothing * p)) for p, qc in zip(history, q) if p > 0)

    chosen = []
    while len(chosen) < k:
        best, best_value = None, -math.inf
        for item in range(len(relevance)):
            if item in chosen:
                continue
            value = (1 - w) * sum(relevance[i] for i in chosen + [item]) - w * kl(chosen + [item])
            if value > best_value + 1e-12:
                best, best_value = item, value
        chosen.append(best)
    return chosen


def _random_candidates(seed, users=6, candidates=12, categories=4):
    generator = torch.Generator().manual_seed(seed)
    relevance = torch.rand(users, candidates, generator=generator)
    category_flags = torch.rand(users, candidates, categories, generator=generator) < 0.4
    # 8 dimensions, so that 6 picks never exhaust the rank of the DPP kernel.
    vectors = torch.nn.functional.normalize(torch.randn(users, candidates, 8, generator=generator), dim=2)
    similarity = vectors @ vectors.transpose(1, 2)
    history = torch.rand(users, categories, generator=generator)
    history = history / history.sum(dim=1, keepdim=True)
    return relevance, category_flags, similarity, history


@pytest.mark.parametrize("redundancy", ["max", "mean"])
@pytest.mark.parametrize("w", [0.0, 0.3, 0.7, 1.0])
def test_mmr_matches_reference(w, redundancy):
    relevance, _, similarity, _ = _random_candidates(int(w * 10))
    picks = mmr(relevance, similarity, 6, w, redundancy=redundancy)
    for user in range(len(relevance)):
        expected = reference_mmr(relevance[user].tolist(), similarity[user].tolist(), 6, w, redundancy)
        assert picks[user].tolist() == expected


def test_mmr_redundancy_rules_differ():
    # Both rules pick item 0, then item 3. For the third pick, item 1 (0.9 like item 0,
    # -0.6 like item 3) scores 0 under max and 0.375 under mean. Item 2 scores 0.1 under both.
    relevance = torch.tensor([[1.0, 0.9, 0.5, 0.8]])
    similarity = torch.tensor([[
        [1.0, 0.9, 0.3, -0.6],
        [0.9, 1.0, 0.3, -0.6],
        [0.3, 0.3, 1.0, 0.3],
        [-0.6, -0.6, 0.3, 1.0],
    ]])  # [B=1, M, M]
    assert mmr(relevance, similarity, 3, 0.5, redundancy="max").tolist() == [[0, 3, 2]]
    assert mmr(relevance, similarity, 3, 0.5, redundancy="mean").tolist() == [[0, 3, 1]]
    with pytest.raises(ValueError, match="invalid redundancy 'sum': use 'max' or 'mean'"):
        mmr(relevance, similarity, 3, 0.5, redundancy="sum")
    with pytest.raises(ValueError, match=r"similarity must have shape \[B, M, M\] = \[1, 4, 4\]"):
        mmr(relevance, similarity[0], 3, 0.5)  # an unbatched [M, M] similarity


@pytest.mark.parametrize("w", [0.1, 0.5, 0.9, 1.0])
def test_dpp_matches_reference(w):
    relevance, _, similarity, _ = _random_candidates(int(w * 10) + 20)
    kernel = dpp_kernel(relevance, similarity, w)
    picks = dpp_greedy(kernel, 6)
    for user in range(len(relevance)):
        expected = reference_dpp(kernel[user], 6)
        assert picks[user].tolist()[: len(expected)] == expected
        assert all(pick == -1 for pick in picks[user].tolist()[len(expected) :])


@pytest.mark.parametrize("w", [0.0, 0.2, 0.6, 1.0])
def test_calibration_matches_reference(w):
    relevance, categories, _, history = _random_candidates(int(w * 10) + 40)
    picks = calibrate(relevance, categories, history, 5, w)
    for user in range(len(relevance)):
        expected = reference_calibration(
            relevance[user].tolist(), categories[user].int().tolist(), history[user].tolist(), 5, w
        )
        assert picks[user].tolist() == expected


def test_rerank_zero_trade_off_keeps_order():
    scores = torch.tensor([[0.1, 0.9, float("-inf"), 0.5, 0.7]])
    categories = torch.tensor([[1, 0], [1, 0], [0, 1], [0, 1], [1, 1]], dtype=torch.bool)
    candidates = Candidates.from_scores(scores, 4, item_categories=categories)
    for method in ("none", "mmr", "dpp"):
        assert rerank(method, candidates, 3, 0.0).tolist() == [[1, 4, 3]]


def test_rerank_mmr_prefers_other_category():
    # Items 1 and 4 share category 0; item 3 is the best item of category 1.
    scores = torch.tensor([[0.0, 1.0, float("-inf"), 0.8, 0.95]])
    categories = torch.tensor([[1, 0], [1, 0], [0, 1], [0, 1], [1, 0]], dtype=torch.bool)
    candidates = Candidates.from_scores(scores, 4, item_categories=categories)
    assert rerank("mmr", candidates, 2, 0.5).tolist() == [[1, 3]]
    assert rerank("dpp", candidates, 2, 0.5).tolist() == [[1, 3]]


def test_rerank_rejects_bad_knob():
    candidates = Candidates.from_scores(torch.rand(1, 5), 3, item_categories=torch.ones(5, 2, dtype=torch.bool))
    with pytest.raises(ValueError, match="trade_off must lie in"):
        rerank("mmr", candidates, 2, 1.5)
    with pytest.raises(ValueError, match="unknown re-ranker"):
        rerank("xquad", candidates, 2, 0.5)


# ----- sweep report -------------------------------------------------------------------------------

from lightning_divrec.rerank.sweep import knee_point, lists_as_scores, pareto_front, sweep_points  # noqa: E402


def test_pareto_front_and_knee():
    rows = [
        {"method": "none", "ndcg": 1.0, "ild": 0.0},
        {"method": "a", "ndcg": 0.95, "ild": 0.8},  # the knee: little relevance lost, much diversity won
        {"method": "a", "ndcg": 0.5, "ild": 0.9},
        {"method": "b", "ndcg": 0.4, "ild": 0.5},  # dominated by the row above
        {"method": "b", "ndcg": 0.0, "ild": 1.0},
    ]
    front = pareto_front(rows, "ndcg", "ild")
    assert front == [0, 1, 2, 4]
    assert knee_point(rows, front, "ndcg", "ild") == 1


def test_sweep_points_share_zero():
    points = sweep_points(["mmr", "dpp"], [0.0, 0.5, 1.0])
    assert [(point.method, point.trade_off) for point in points] == [
        ("none", 0.0), ("mmr", 0.5), ("mmr", 1.0), ("dpp", 0.5), ("dpp", 1.0),
    ]


def test_lists_as_scores_rank_lists_first():
    scores = lists_as_scores(torch.tensor([[3, 0, -1]]), 5)
    assert scores[0, 3] > scores[0, 0]
    assert torch.isinf(scores[0, [1, 2, 4]]).all()
