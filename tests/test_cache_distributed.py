"""Two real gloo processes: one builds the prepared dataset, both read the same entry."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import torch.distributed as dist
import torch.multiprocessing as mp
from omegaconf import OmegaConf

from lightning_divrec.config import DataConfig
from lightning_divrec.data import RecDataModule
from tests.conftest import write_tiny_ml100k

pytestmark = pytest.mark.distributed


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _worker(rank: int, world_size: int, port: int, folder: str, cache_dir: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    try:
        config = OmegaConf.structured(DataConfig(path=folder, cache=True, cache_dir=cache_dir))
        module = RecDataModule(config)
        # Lightning's order: prepare_data on one process, a barrier, then setup on every process.
        if rank == 0:
            module.prepare_data()
        dist.barrier()
        module.setup("fit")
        result = {"cached": module.loaded_from_cache, "fingerprint": module.fingerprint()}
        Path(out, f"rank{rank}.json").write_text(json.dumps(result))
    finally:
        dist.destroy_process_group()


def test_one_build_read_by_every_rank(tmp_path: Path):
    folder = write_tiny_ml100k(tmp_path / "data")
    cache_dir = tmp_path / "cache"
    mp.spawn(_worker, args=(2, _free_port(), str(folder), str(cache_dir), str(tmp_path)), nprocs=2, join=True)
    results = [json.loads((tmp_path / f"rank{rank}.json").read_text()) for rank in range(2)]
    assert [result["cached"] for result in results] == [True, True]
    assert results[0]["fingerprint"] == results[1]["fingerprint"]
    entries = list((cache_dir / "prepared").iterdir())
    assert len(entries) == 1
    assert (entries[0] / "manifest.json").is_file()

    single = RecDataModule(OmegaConf.structured(DataConfig(path=str(folder))))
    single.setup("fit")
    assert single.fingerprint() == results[0]["fingerprint"]
