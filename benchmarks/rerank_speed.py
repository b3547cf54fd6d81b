"""Time the batched re-rankers against per-user Python references on MovieLens-100K-sized input.

    python benchmarks/rerank_speed.py --users 943 --candidates 200 --k 10

Every user gets ``--candidates`` candidates with random scores, 19 genre-like
categories and a history distribution. Three ways are timed on the same input:

* ``batched``: ``lightning_divrec.rerank`` on all users at once;
* ``batched, one user per call``: the same functions called per user;
* ``python reference``: the per-user references of ``tests/test_rerank.py``
  (plain loops; the DPP one computes determinants directly), timed on
  ``--reference-users`` users and scaled to all users.

The batched results are also compared with the references on the users timed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lightning_divrec.metrics.functional.diversity import jaccard_similarity  # noqa: E402
from lightning_divrec.rerank import calibrate, dpp_greedy, dpp_kernel, mmr, scale_relevance  # noqa: E402
from tests.test_rerank import reference_calibration, reference_dpp, reference_mmr  # noqa: E402


def make_input(args):
    generator = torch.Generator().manual_seed(0)
    scores = torch.sort(torch.randn(args.users, args.candidates, generator=generator), dim=1, descending=True).values
    categories = torch.rand(args.users, args.candidates, 19, generator=generator) < 0.12
    categories[:, :, 0] |= ~categories.any(dim=2)
    history = torch.rand(args.users, 19, generator=generator)
    history = history / history.sum(dim=1, keepdim=True)
    relevance = scale_relevance(scores, torch.ones_like(scores, dtype=torch.bool))
    return relevance, categories, jaccard_similarity(categories), history


def run_batched(method, relevance, categories, similarity, history, k, w):
    if method in ("mmr", "mmr_mean"):
        return mmr(relevance, similarity, k, w, redundancy="mean" if method == "mmr_mean" else "max")
    if method == "dpp":
        return dpp_greedy(dpp_kernel(relevance, similarity, w), k)
    return calibrate(relevance, categories, history, k, w)


def run_reference(method, relevance, categories, similarity, history, k, w, user):
    if method in ("mmr", "mmr_mean"):
        redundancy = "mean" if method == "mmr_mean" else "max"
        return reference_mmr(relevance[user].tolist(), similarity[user].tolist(), k, w, redundancy)
    if method == "dpp":
        return reference_dpp(dpp_kernel(relevance[user : user + 1], similarity[user : user + 1], w)[0], k)
    return reference_calibration(relevance[user].tolist(), categories[user].int().tolist(), history[user].tolist(), k, w)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=943)
    parser.add_argument("--candidates", type=int, default=200)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--trade-off", type=float, default=0.5)
    parser.add_argument("--reference-users", type=int, default=20)
    args = parser.parse_args()

    data = make_input(args)
    results = {}
    for method in ("mmr", "mmr_mean", "dpp", "calibration"):
        began = time.perf_counter()
        batched = run_batched(method, *data, args.k, args.trade_off)
        batched_seconds = time.perf_counter() - began

        began = time.perf_counter()
        for user in range(args.users):
            single_user = tuple(tensor[user : user + 1] for tensor in data)
            run_batched(method, *single_user, args.k, args.trade_off)
        per_call_seconds = time.perf_counter() - began

        began = time.perf_counter()
        agree = 0
        for user in range(args.reference_users):
            expected = run_reference(method, *data, args.k, args.trade_off, user)
            agree += batched[user].tolist()[: len(expected)] == expected
        reference_seconds = (time.perf_counter() - began) * args.users / args.reference_users
        results[method] = {
            "batched_seconds": batched_seconds,
            "one_user_per_call_seconds": per_call_seconds,
            "python_reference_seconds_scaled": reference_seconds,
            "speedup_vs_python_reference": reference_seconds / batched_seconds,
            "speedup_vs_one_user_per_call": per_call_seconds / batched_seconds,
            "reference_users_identical": f"{agree}/{args.reference_users}",
        }
    print(json.dumps({"users": args.users, "candidates": args.candidates, "k": args.k,
                      "trade_off": args.trade_off, "threads": torch.get_num_threads(), "results": results}, indent=2))


if __name__ == "__main__":
    main()
