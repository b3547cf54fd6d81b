"""Peak memory and step time of full-graph GraphSAGE training on a large synthetic graph.

    python benchmarks/graph_scale.py --users 1000000 --items 100000 --edges 20000000 --steps 3

Builds a bipartite graph whose item degrees follow a power law (Zipf
exponent ``--zipf``) and whose users draw ``--edges`` / ``--users`` items on
average, and removes duplicate edges. It then runs ``--steps`` BPR training
steps of the GraphSAGE encoder with Adam; the encoder uses the sparse mean
aggregation, and every step propagates over the whole graph. Reports the time of each phase and the peak
resident memory of the process (``ru_maxrss``), which includes the graph,
the embeddings, Adam's state and the activations kept for backward, once
after building the graph and once at the end.

    python benchmarks/graph_scale.py --edges 20000000 --epoch --batch 1048576

trains one full epoch instead: every edge once as a positive, in shuffled
batches of ``--batch``.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lightning_divrec.models.components.graph import BipartiteGraph, category_rebalance_weights  # noqa: E402
from lightning_divrec.models.components.sage import BipartiteSAGE  # noqa: E402
from lightning_divrec.models.losses import bpr_loss  # noqa: E402


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux reports KiB


def synthetic_edges(users: int, items: int, edges: int, zipf: float, generator: torch.Generator) -> torch.Tensor:
    """Return [2, E'] unique (user, item) edges, E' slightly under ``edges`` after duplicates are removed."""
    item_weights = torch.arange(1, items + 1, dtype=torch.float64).pow(-zipf)
    item_cdf = torch.cumsum(item_weights / item_weights.sum(), dim=0)
    user_index = torch.randint(0, users, (edges,), generator=generator)
    uniform = torch.rand(edges, generator=generator, dtype=torch.float64)
    item_index = torch.searchsorted(item_cdf, uniform).clamp_(max=items - 1)
    keys = torch.unique(user_index * items + item_index)
    return torch.stack([keys // items, keys % items])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--edges", type=int, default=20_000_000)
    parser.add_argument("--zipf", type=float, default=0.8)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=65536, help="BPR triples per step")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument(
        "--epoch", action="store_true", help="train one full epoch: every edge once as a positive, in shuffled batches of --batch"
    )
    parser.add_argument("--rebalance", type=float, default=0.0, help="model.rebalance_strength")
    parser.add_argument("--output", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(torch.get_num_threads())
    generator = torch.Generator().manual_seed(0)
    timings = {}

    start = time.perf_counter()
    edge_index = synthetic_edges(args.users, args.items, args.edges, args.zipf, generator)
    timings["generate edges s"] = time.perf_counter() - start

    start = time.perf_counter()
    weights = None
    if args.rebalance:
        categories = torch.rand(args.items, 20, generator=generator) < 0.1
        weights = category_rebalance_weights(edge_index, categories, args.users, args.rebalance)
    graph = BipartiteGraph(edge_index, args.users, args.items, user_edge_weight=weights)
    timings["build adjacency s"] = time.perf_counter() - start

    timings["peak RSS after building GiB"] = peak_rss_gib()

    encoder = BipartiteSAGE(args.users, args.items, dim=args.dim, num_layers=args.layers, dropout=0.2)
    optimizer = torch.optim.Adam(encoder.parameters(), lr=0.002)
    step_seconds = []
    if args.epoch:
        batches = torch.randperm(edge_index.shape[1], generator=generator).split(args.batch)
    else:
        batches = [torch.randint(0, edge_index.shape[1], (args.batch,), generator=generator) for _ in range(args.steps)]
    epoch_start = time.perf_counter()
    for picks in batches:
        start = time.perf_counter()
        negatives_count = len(picks)
        users, positives = edge_index[:, picks]
        negatives = torch.randint(0, args.items, (negatives_count,), generator=generator)
        user_vectors, item_vectors = encoder(graph)
        anchor = user_vectors[users]
        loss = bpr_loss((anchor * item_vectors[positives]).sum(1), (anchor * item_vectors[negatives]).sum(1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step_seconds.append(time.perf_counter() - start)
    timings["training s"] = time.perf_counter() - epoch_start

    result = {
        "users": args.users,
        "items": args.items,
        "edges": int(edge_index.shape[1]),
        "dim": args.dim,
        "layers": args.layers,
        "rebalance_strength": args.rebalance,
        "threads": torch.get_num_threads(),
        **{key: round(value, 2) for key, value in timings.items()},
        "batch": args.batch,
        "full epoch": args.epoch,
        "training steps": len(step_seconds),
        "training step s": [round(value, 2) for value in step_seconds],
        "peak RSS GiB": round(peak_rss_gib(), 2),
        "final loss": round(float(loss.detach()), 4),
    }
    print(json.dumps(result, indent=2))
    if args.output:
        args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
