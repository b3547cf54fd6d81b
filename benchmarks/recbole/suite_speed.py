"""Time the whole metric suite on the MovieLens-100K test stage of RecBole's 8:1:1 protocol.

    python benchmarks/recbole/suite_speed.py --threads 1 --repeats 3 [--profile]

The users, held-out items and excluded items are those of the side-by-side
benchmark's test stage (``data.split=random_811``, validation items masked),
943 users ranked over all 1,682 items. The scores are dot products of seeded
random 64-dimensional vectors, so no model is trained and only the suite is
timed: ``RankingMetricSuite`` at K 10 and 20 with every metric the benchmark
computes, in batches of ``data.eval_batch_size`` users. Batches are built
before the clock starts. The figure is the best of ``--repeats`` passes.
``--profile`` adds a cProfile listing of one more pass, sorted by own time.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import platform
import pstats
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from lightning_divrec.config.loading import load_train_config  # noqa: E402
from lightning_divrec.data import RecDataModule  # noqa: E402
from lightning_divrec.metrics import RankingMetricSuite  # noqa: E402

PROTOCOL = ["data.split=random_811", "data.mask_valid_at_test=true"]


def test_batches(datamodule, batch_size: int) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Return (scores [B, I] with history at -inf, target [B, I], history [B, I]) for every test batch."""
    stage = datamodule.stages["test"]
    generator = torch.Generator().manual_seed(0)
    user_vectors = torch.randn(datamodule.num_users, 64, generator=generator)
    item_vectors = torch.randn(datamodule.num_items, 64, generator=generator)
    batches = []
    for start in range(0, len(stage.users), batch_size):
        users = stage.users[start : start + batch_size]
        scores = user_vectors[torch.as_tensor(users)] @ item_vectors.T  # [B, 64] @ [64, I] -> [B, I]
        history = torch.zeros_like(scores, dtype=torch.bool)
        target = torch.zeros_like(scores, dtype=torch.bool)
        rows, items = stage.exclude.gather(users)
        history[torch.from_numpy(rows), torch.from_numpy(items)] = True
        rows, items = stage.targets.gather(users)
        target[torch.from_numpy(rows), torch.from_numpy(items)] = True
        scores.masked_fill_(history, float("-inf"))
        batches.append((scores, target, history))
    return batches


def evaluate(datamodule, ks, batches) -> dict[str, float]:
    suite = RankingMetricSuite(
        ks,
        datamodule.num_items,
        item_categories=datamodule.item_categories,
        item_popularity=datamodule.item_popularity,
        num_users=datamodule.num_users,
        item_interactions=datamodule.item_interaction_counts,
    )
    for scores, target, history in batches:
        suite.update(scores, target, history=history)
    return {name: float(value) for name, value in suite.compute().items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--repeats", type=int, default=3, help="timed passes; the best one is reported")
    parser.add_argument("--split-seed", type=int, default=2020, help="data.split_seed of the 8:1:1 split")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile listing of one pass")
    parser.add_argument("--output", type=Path, default=None, help="also write the result, metric values included, as JSON")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    cfg = load_train_config(PROTOCOL + [f"data.split_seed={args.split_seed}"])
    datamodule = RecDataModule(cfg.data, seed=0)
    datamodule.setup("test")
    batches = test_batches(datamodule, cfg.data.eval_batch_size)
    ks = list(cfg.eval.ks)

    values = evaluate(datamodule, ks, batches)  # warm-up pass, not timed
    seconds = []
    for _ in range(args.repeats):
        began = time.perf_counter()
        evaluate(datamodule, ks, batches)
        seconds.append(time.perf_counter() - began)
    result = {
        "users": sum(len(batch[0]) for batch in batches),
        "items": datamodule.num_items,
        "ks": ks,
        "metrics": len(values),
        "seconds_best": min(seconds),
        "seconds_all": seconds,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    print(json.dumps(result, indent=2))
    if args.output:
        temporary = args.output.with_name(args.output.name + ".tmp")
        temporary.write_text(json.dumps(result | {"values": values}, indent=2) + "\n")
        temporary.replace(args.output)
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        evaluate(datamodule, ks, batches)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
