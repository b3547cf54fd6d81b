"""Slow, obviously correct per-user metric definitions, for comparison with the vectorised kernels."""

from __future__ import annotations

import math


def ranked_list(scores: list[float], k: int) -> list[int]:
    """Items by descending score, ties by ascending index, excluded (-inf) items dropped."""
    order = sorted(range(len(scores)), key=lambda item: (-scores[item], item))
    return [item for item in order if scores[item] != float("-inf")][:k]


def per_user(scores: list[float], target: list[float], k: int) -> dict[str, float]:
    ranked = ranked_list(scores, k)
    relevant = {item for item, gain in enumerate(target) if gain > 0}
    hits = [1.0 if item in relevant else 0.0 for item in ranked]
    n = len(relevant)
    rankable = sum(1 for score in scores if score != float("-inf"))
    dcg = sum(target[item] / math.log2(rank + 2) for rank, item in enumerate(ranked))
    ideal = sorted(target, reverse=True)[:k]
    idcg = sum(gain / math.log2(rank + 2) for rank, gain in enumerate(ideal))
    first = next((rank + 1 for rank, hit in enumerate(hits) if hit), None)
    precision_at = [sum(hits[: rank + 1]) / (rank + 1) for rank in range(len(hits))]
    p = sum(hits) / k
    r = sum(hits) / n
    return {
        "recall": r,
        "recall_capped": sum(hits) / min(k, n),
        "precision": p,
        "precision_adjusted": sum(hits) / min(k, rankable),
        "f1": 0.0 if p + r == 0 else 2 * p * r / (p + r),
        "ndcg": dcg / idcg,
        "mrr": 0.0 if first is None else 1.0 / first,
        "hit": 1.0 if any(hits) else 0.0,
        "map": sum(pa * hit for pa, hit in zip(precision_at, hits)) / min(k, n),
    }


def jaccard_ild(items: list[int], categories: list[set[str]]) -> float | None:
    pairs = [(a, b) for index, a in enumerate(items) for b in items[index + 1 :]]
    if not pairs:
        return None
    total = 0.0
    for a, b in pairs:
        union = categories[a] | categories[b]
        similarity = 1.0 if not union else len(categories[a] & categories[b]) / len(union)
        total += 1 - similarity
    return total / len(pairs)


def gini(counts: list[int]) -> float:
    """Gini as the mean absolute difference over all ordered pairs, divided by twice the mean."""
    n = len(counts)
    mean = sum(counts) / n
    return sum(abs(a - b) for a in counts for b in counts) / (2 * n * n * mean)


def entropy(counts: list[int]) -> float:
    total = sum(counts)
    return -sum(c / total * math.log2(c / total) for c in counts if c > 0)


def auc(scores: list[float], target: list[bool]) -> float | None:
    positives = [s for s, t in zip(scores, target) if t]
    negatives = [s for s, t in zip(scores, target) if not t and s != float("-inf")]
    if not positives or not negatives:
        return None
    wins = 0.0
    for p in positives:
        for n in negatives:
            if p > n:
                wins += 1.0
            elif p == n:
                wins += 0.5
    return wins / (len(positives) * len(negatives))


def category_coverage(items: list[int], categories: list[set[int]], num_categories: int) -> float:
    covered = set().union(*(categories[item] for item in items)) if items else set()
    return len(covered) / num_categories


def alpha_gains(order: list[int], relevant: set[int], categories: list[set[int]], alpha: float) -> list[float]:
    seen: dict[int, int] = {}
    values = []
    for item in order:
        if item not in relevant:
            values.append(0.0)
            continue
        values.append(sum((1 - alpha) ** seen.get(c, 0) for c in categories[item]))
        for c in categories[item]:
            seen[c] = seen.get(c, 0) + 1
    return values


def ideal_alpha_dcg(relevant: set[int], categories: list[set[int]], alpha: float, k: int) -> float:
    # Greedy ideal: repeatedly append the held-out item with the largest marginal gain.
    remaining = sorted(relevant)
    ideal_order: list[int] = []
    while remaining and len(ideal_order) < k:
        best = max(remaining, key=lambda item: (alpha_gains(ideal_order + [item], relevant, categories, alpha)[-1], -item))
        ideal_order.append(best)
        remaining.remove(best)
    return sum(g / math.log2(r + 2) for r, g in enumerate(alpha_gains(ideal_order, relevant, categories, alpha)))


def alpha_ndcg(ranked: list[int], relevant: set[int], categories: list[set[int]], alpha: float, k: int) -> float | None:
    dcg = sum(g / math.log2(r + 2) for r, g in enumerate(alpha_gains(ranked, relevant, categories, alpha)))
    idcg = ideal_alpha_dcg(relevant, categories, alpha, k)
    return None if idcg == 0 else dcg / idcg


def category_shares(items: list[int], categories: list[set[int]], num_categories: int) -> list[float]:
    mass = [0.0] * num_categories
    for item in items:
        for c in categories[item]:
            mass[c] += 1 / len(categories[item])
    total = sum(mass)
    return [m / total for m in mass] if total else mass


def calibration(history: list[int], ranked: list[int], categories: list[set[int]], num_categories: int, smoothing: float) -> float | None:
    p = category_shares(history, categories, num_categories)
    q = category_shares(ranked, categories, num_categories)
    if sum(p) == 0:
        return None
    return sum(pc * math.log2(pc / ((1 - smoothing) * qc + smoothing * pc)) for pc, qc in zip(p, q) if pc > 0)


def personalization(lists: list[list[int]], k: int) -> float:
    pairs = [(a, b) for index, a in enumerate(lists) for b in lists[index + 1 :]]
    return 1 - sum(len(set(a) & set(b)) / k for a, b in pairs) / len(pairs)
