"""Evaluation in several real gloo processes equals the single-process result."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from lightning_divrec.data.datamodule import ShardSampler
from lightning_divrec.metrics import RankingMetricSuite

pytestmark = pytest.mark.distributed

NUM_ITEMS = 30


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _random_users(count: int):
    generator = torch.Generator().manual_seed(11)
    scores = torch.randn(count, NUM_ITEMS, generator=generator)
    target = torch.rand(count, NUM_ITEMS, generator=generator) < 0.1
    target[:, 0] |= ~target.any(dim=1)
    categories = torch.rand(NUM_ITEMS, 5, generator=generator) < 0.3
    popularity = torch.randint(0, 20, (NUM_ITEMS,), generator=generator)
    history = (torch.rand(count, NUM_ITEMS, generator=generator) < 0.2) & ~target
    scores[history] = float("-inf")
    return scores, target, categories, popularity, history


def _hits_case():
    # Five users; only the first has its held-out item at rank 1, the rest never rank it.
    scores = torch.arange(NUM_ITEMS, 0, -1).float().repeat(5, 1)
    target = torch.zeros(5, NUM_ITEMS, dtype=torch.bool)
    target[0, 0] = True
    target[1:, NUM_ITEMS - 1] = True
    return scores, target


def _evaluate(rank: int, world_size: int):
    """Shard users the way the data module does and return both suites' results."""
    scores, target, categories, popularity, history = _random_users(37)
    suite = RankingMetricSuite(
        [5, 10],
        NUM_ITEMS,
        item_categories=categories,
        item_embeddings=torch.randn(NUM_ITEMS, 4, generator=torch.Generator().manual_seed(5)),
        item_popularity=popularity,
        num_users=20,
        item_interactions=popularity * 2 + 1,
    )
    mine = list(ShardSampler(len(scores), rank, world_size))
    for start in range(0, len(mine), 4):
        rows = mine[start : start + 4]
        suite.update(scores[rows], target[rows], history=history[rows])
    hits_scores, hits_target = _hits_case()
    hits_suite = RankingMetricSuite([10], NUM_ITEMS)
    hits_rows = list(ShardSampler(5, rank, world_size))
    hits_suite.update(hits_scores[hits_rows], hits_target[hits_rows])
    return (
        {name: value.item() for name, value in suite.compute().items()},
        {name: value.item() for name, value in hits_suite.compute().items()},
    )


def _worker(rank: int, world_size: int, port: int, output: str):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    try:
        results = _evaluate(rank, world_size)
        Path(f"{output}.{rank}").write_text(json.dumps(results))
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("world_size", [2, 3, 4])
def test_suite_equal_across_world_sizes(tmp_path: Path, world_size: int):
    single, single_hits = _evaluate(0, 1)
    output = str(tmp_path / "results")
    mp.spawn(_worker, args=(world_size, _free_port(), output), nprocs=world_size, join=True)
    for rank in range(world_size):
        multi, multi_hits = json.loads(Path(f"{output}.{rank}").read_text())
        assert multi.keys() == single.keys()
        for name, value in single.items():
            assert multi[name] == pytest.approx(value, abs=1e-9), (rank, name)
        assert multi_hits["users"] == 5
        assert multi_hits["hit@10"] == pytest.approx(0.2)
    assert single_hits["hit@10"] == pytest.approx(0.2)


@pytest.mark.parametrize("world_size", [1, 2, 3, 4])
def test_shards_cover_each_user_once(world_size: int):
    shards = [list(ShardSampler(5, rank, world_size)) for rank in range(world_size)]
    assert sorted(index for shard in shards for index in shard) == [0, 1, 2, 3, 4]
    assert sum(len(ShardSampler(5, rank, world_size)) for rank in range(world_size)) == 5
