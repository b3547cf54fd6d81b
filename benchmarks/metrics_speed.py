"""Time the whole metric suite against per-user evaluation on synthetic full-catalogue scores.

    python benchmarks/metrics_speed.py --users 100000 --items 50000 --k 20

Scores come from random 32-dimensional user and item vectors. Every user has
``--history`` excluded items and ``--targets`` held-out items. Items have
power-law popularity and 1 to 3 of 20 categories. Three ways to evaluate are
timed on the same scores:

* ``suite``: ``RankingMetricSuite`` on batches of ``--batch-size`` users;
* ``suite, one user per call``: the same suite called with one user at a time,
  measured on ``--loop-users`` users and scaled to all users;
* ``python reference``: the per-user definitions of ``tests/reference.py``,
  measured on ``--reference-users`` users and scaled to all users.

Score generation is timed separately and excluded from every figure.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests/reference.py

from lightning_divrec.metrics import RankingMetricSuite  # noqa: E402
from tests import reference  # noqa: E402


def make_world(args):
    generator = torch.Generator().manual_seed(0)
    user_vectors = torch.randn(args.users, 32, generator=generator)
    item_vectors = torch.randn(args.items, 32, generator=generator)
    ranks = torch.arange(1, args.items + 1, dtype=torch.float64)
    popularity = (1e5 / ranks).long()[torch.randperm(args.items, generator=generator)]
    categories = torch.zeros(args.items, 20, dtype=torch.bool)
    for extra in range(3):
        chosen = torch.randint(0, 20, (args.items,), generator=generator)
        keep = torch.rand(args.items, generator=generator) < (1.0 if extra == 0 else 0.4)
        categories[torch.arange(args.items)[keep], chosen[keep]] = True
    return user_vectors, item_vectors, popularity, categories


def make_batch(args, user_vectors, item_vectors, start, stop):
    """Return scores [B, I] with history set to -inf, targets [B, I] and history [B, I]."""
    generator = torch.Generator().manual_seed(1000 + start)
    batch = stop - start
    scores = user_vectors[start:stop] @ item_vectors.T
    picks = torch.rand(batch, args.items, generator=generator).topk(args.history + args.targets, dim=1).indices
    history = torch.zeros(batch, args.items, dtype=torch.bool)
    history.scatter_(1, picks[:, : args.history], True)
    target = torch.zeros(batch, args.items, dtype=torch.bool)
    target.scatter_(1, picks[:, args.history :], True)
    scores[history] = float("-inf")
    return scores, target, history


def build_suite(args, popularity, categories):
    return RankingMetricSuite(
        [args.k], args.items, item_categories=categories, item_popularity=popularity,
        num_users=args.users, item_interactions=popularity,
    )


def time_suite(args, world) -> tuple[float, float, dict]:
    user_vectors, item_vectors, popularity, categories = world
    suite = build_suite(args, popularity, categories)
    metric_seconds = generation_seconds = 0.0
    for start in range(0, args.users, args.batch_size):
        began = time.perf_counter()
        batch = make_batch(args, user_vectors, item_vectors, start, min(start + args.batch_size, args.users))
        generation_seconds += time.perf_counter() - began
        began = time.perf_counter()
        suite.update(*batch[:2], history=batch[2])
        metric_seconds += time.perf_counter() - began
    began = time.perf_counter()
    values = {name: float(value) for name, value in suite.compute().items()}
    metric_seconds += time.perf_counter() - began
    return metric_seconds, generation_seconds, values


def time_one_user_per_call(args, world) -> float:
    user_vectors, item_vectors, popularity, categories = world
    suite = build_suite(args, popularity, categories)
    scores, target, history = make_batch(args, user_vectors, item_vectors, 0, args.loop_users)
    began = time.perf_counter()
    for user in range(args.loop_users):
        suite.update(scores[user : user + 1], target[user : user + 1], history=history[user : user + 1])
    suite.compute()
    return (time.perf_counter() - began) * args.users / args.loop_users


def time_reference(args, world) -> float:
    user_vectors, item_vectors, popularity, categories = world
    scores, target, history = make_batch(args, user_vectors, item_vectors, 0, args.reference_users)
    category_sets = [set(torch.nonzero(row).flatten().tolist()) for row in categories]
    interactions = popularity.double().tolist()
    began = time.perf_counter()
    most_popular = set(reference.ranked_list(interactions, args.k))
    head = set(reference.ranked_list(interactions, math.ceil(0.2 * args.items)))
    lists = []
    for user in range(args.reference_users):
        row, relevant_row = scores[user].tolist(), target[user].tolist()
        reference.per_user(row, [float(flag) for flag in relevant_row], args.k)
        ranked = reference.ranked_list(row, args.k)
        relevant = {item for item, flag in enumerate(relevant_row) if flag}
        history_items = torch.nonzero(history[user]).flatten().tolist()
        reference.auc(row, relevant_row)
        reference.jaccard_ild(ranked, category_sets)
        reference.category_coverage(ranked, category_sets, 20)
        reference.alpha_ndcg(ranked, relevant, category_sets, 0.5, args.k)
        reference.calibration(history_items, ranked, category_sets, 20, 0.01)
        [-math.log2(max(interactions[item], 1) / args.users) for item in ranked]
        [item in head for item in ranked]
        sum(1 for item in ranked if item in relevant and item not in most_popular)
        lists.append(ranked)
    counts = [0] * args.items
    for ranked in lists:
        for item in ranked:
            counts[item] += 1
    reference.gini(counts[:2000])  # the O(I^2) pairwise Gini is capped; the rest is O(I)
    reference.entropy(counts)
    return (time.perf_counter() - began) * args.users / args.reference_users


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--history", type=int, default=20, help="excluded items per user")
    parser.add_argument("--targets", type=int, default=5, help="held-out items per user")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--loop-users", type=int, default=500)
    parser.add_argument("--reference-users", type=int, default=100)
    parser.add_argument("--output", type=Path, default=None, help="also write the results as JSON")
    args = parser.parse_args()

    world = make_world(args)
    suite_seconds, generation_seconds, values = time_suite(args, world)
    loop_seconds = time_one_user_per_call(args, world)
    reference_seconds = time_reference(args, world)
    result = {
        "users": args.users, "items": args.items, "k": args.k, "batch_size": args.batch_size,
        "suite_seconds": suite_seconds,
        "score_generation_seconds": generation_seconds,
        "one_user_per_call_seconds_scaled": loop_seconds,
        "python_reference_seconds_scaled": reference_seconds,
        "speedup_vs_one_user_per_call": loop_seconds / suite_seconds,
        "speedup_vs_python_reference": reference_seconds / suite_seconds,
        "metrics": len(values),
        "torch": torch.__version__, "threads": torch.get_num_threads(), "python": platform.python_version(),
    }
    print(json.dumps(result, indent=2))
    if args.output:
        args.output.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
