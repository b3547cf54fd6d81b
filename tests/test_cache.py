"""Prepared-dataset cache: reuse when nothing changed, rebuild when a file or setting changed."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from lightning_divrec.config import DataConfig
from lightning_divrec.data import RecDataModule, prepare
from lightning_divrec.data.sources.common import DataFormatError


def _write_log(folder: Path, num_users: int = 15, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(num_users):
        for item in rng.choice(30, size=6, replace=False):
            rows.append((f"user-{user}", int(item), int(rng.integers(1, 6)), int(1000 + rng.integers(0, 50))))
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"]).to_csv(folder / "interactions.csv", index=False)
    return folder


@pytest.fixture
def counting_reader(monkeypatch):
    """Count calls of the real source reader (it still runs)."""
    calls = []
    real = prepare.read_source

    def read_source(config):
        calls.append(config.name)
        return real(config)

    monkeypatch.setattr(prepare, "read_source", read_source)
    return calls


def _config(tmp_path: Path, **values):
    base = {"name": "tabular", "path": str(tmp_path / "log"), "cache": True, "cache_dir": str(tmp_path / "cache")}
    return OmegaConf.merge(OmegaConf.structured(DataConfig), {**base, **values})


def _setup(config) -> RecDataModule:
    module = RecDataModule(config)
    module.prepare_data()
    module.setup("fit")
    return module


def _entries(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "cache" / "prepared").iterdir())


def test_unchanged_source_reuses_cache(tmp_path, counting_reader):
    _write_log(tmp_path / "log")
    first = _setup(_config(tmp_path))
    assert counting_reader == ["tabular"]
    assert first.loaded_from_cache  # prepare_data built the entry, setup read it
    (entry,) = _entries(tmp_path)
    written = (entry / "dataset.npz").stat()

    second = _setup(_config(tmp_path))
    assert counting_reader == ["tabular"]
    assert second.loaded_from_cache
    assert (entry / "dataset.npz").stat().st_mtime_ns == written.st_mtime_ns
    assert (entry / "dataset.npz").stat().st_ino == written.st_ino
    assert second.fingerprint() == first.fingerprint()
    assert second.interactions.user_ids.tolist() == first.interactions.user_ids.tolist()


def test_cached_equals_uncached(tmp_path):
    _write_log(tmp_path / "log")
    cached = _setup(_config(tmp_path, split="ratio_time"))
    direct = _setup(_config(tmp_path, split="ratio_time", cache=False))
    assert cached.loaded_from_cache
    assert not direct.loaded_from_cache
    assert cached.fingerprint() == direct.fingerprint()
    assert torch_equal(cached.train_edges, direct.train_edges)


def torch_equal(first, second) -> bool:
    return first.shape == second.shape and bool((first == second).all())


def test_id_maps_written_beside_cache(tmp_path):
    _write_log(tmp_path / "log")
    module = _setup(_config(tmp_path))
    (entry,) = _entries(tmp_path)
    users = pd.read_csv(entry / "user_ids.tsv", sep="\t", dtype={"original_id": str})
    assert users["index"].tolist() == list(range(module.num_users))
    assert users["original_id"].tolist() == module.interactions.user_ids.tolist()
    items = pd.read_csv(entry / "item_ids.tsv", sep="\t")
    assert items["original_id"].tolist() == module.interactions.item_ids.tolist()


def test_changed_file_or_setting_rebuilds(tmp_path, counting_reader):
    folder = _write_log(tmp_path / "log")
    first = _setup(_config(tmp_path))

    # Same settings, different content and size: a new entry.
    _write_log(folder, num_users=16, seed=1)
    changed = _setup(_config(tmp_path))
    assert len(counting_reader) == 2
    assert changed.num_users == 16
    assert changed.fingerprint() != first.fingerprint()
    assert len(_entries(tmp_path)) == 2

    # Same file, a touched modification time: rebuilt (the key uses size and mtime).
    status = (folder / "interactions.csv").stat()
    os.utime(folder / "interactions.csv", ns=(status.st_atime_ns, status.st_mtime_ns + 10**9))
    _setup(_config(tmp_path))
    assert len(counting_reader) == 3

    # A preprocessing setting changes the key; a batch size does not.
    _setup(_config(tmp_path, rating_threshold=2.0))
    assert len(counting_reader) == 4
    _setup(_config(tmp_path, rating_threshold=2.0, batch_size=64))
    assert len(counting_reader) == 4
    assert len(_entries(tmp_path)) == 4


def test_failed_build_leaves_nothing(tmp_path):
    folder = _write_log(tmp_path / "log")
    with (folder / "interactions.csv").open("a") as handle:
        handle.write("user-1,3,4,late\n")
    with pytest.raises(DataFormatError, match="column 'timestamp'"):
        _setup(_config(tmp_path))
    prepared = tmp_path / "cache" / "prepared"
    assert not prepared.exists() or list(prepared.iterdir()) == []


def test_failed_write_leaves_no_entry(tmp_path, monkeypatch):
    _write_log(tmp_path / "log")

    def fail_write(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", fail_write)
    with pytest.raises(OSError, match="disk full"):
        _setup(_config(tmp_path))
    assert list((tmp_path / "cache" / "prepared").iterdir()) == []


def test_ml100k_cached_matches_default(tmp_path):
    cached = RecDataModule(OmegaConf.structured(DataConfig(cache=True, cache_dir=str(tmp_path))))
    cached.prepare_data()
    cached.setup("fit")
    default = RecDataModule(OmegaConf.structured(DataConfig()))
    default.setup("fit")
    assert cached.loaded_from_cache
    assert cached.fingerprint() == default.fingerprint()
    assert np.array_equal(cached.interactions.item_categories, default.interactions.item_categories)
    assert cached.interactions.item_titles == default.interactions.item_titles
