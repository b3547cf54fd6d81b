"""Shared fixtures. Test tiers are chosen by marker:

    pytest -m "not gpu"                  everything a CPU machine can run (what CI runs)
    pytest -m "not slow and not distributed and not slurm"   the quick unit tier
    pytest -m distributed                real multi-process gloo runs
    pytest -m slow                       full MovieLens-100K training and quality checks
    pytest -m slurm                      jobs on a local Slurm cluster (start it with
                                         `sudo bash .ci/slurm-cluster.sh`); skipped
                                         without one, failed without one when CI is set

Tests build their data in code or read the MovieLens-100K copy that the
``recbole`` wheel ships; they never download.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("WANDB_MODE", "offline")


def write_tiny_ml100k(folder: Path, num_users: int = 12, num_items: int = 15, seed: int = 0) -> Path:
    """Write ``u.data`` and ``u.item`` of a small random MovieLens-100K-format dataset.

    Every user has 5 to 9 distinct items; timestamps repeat so that the
    leave-one-out tie rule is exercised. One title has a Latin-1 byte.
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for user in range(1, num_users + 1):
        items = rng.choice(np.arange(1, num_items + 1), size=rng.integers(5, 10), replace=False)
        for item in items:
            rows.append(f"{user}\t{item}\t{rng.integers(1, 6)}\t{880000000 + rng.integers(0, 20)}")
    (folder / "u.data").write_text("\n".join(rows) + "\n", encoding="latin-1")
    item_lines = []
    for item in range(1, num_items + 1):
        flags = ["0"] * 19
        for genre in rng.choice(19, size=rng.integers(1, 4), replace=False):
            flags[genre] = "1"
        title = "Caf\xe9 Society (1995)" if item == 1 else f"Movie {item} (1990)"
        item_lines.append("|".join([str(item), title, "01-Jan-1995", "", "http://example.org"] + flags))
    (folder / "u.item").write_bytes(("\n".join(item_lines) + "\n").encode("latin-1"))
    return folder


@pytest.fixture
def tiny_ml100k(tmp_path: Path) -> Path:
    return write_tiny_ml100k(tmp_path / "tiny-ml100k")


@pytest.fixture
def tiny_overrides(tmp_path: Path, tiny_ml100k: Path) -> list[str]:
    """Overrides that shrink the default training run to a few seconds on the tiny data."""
    return [
        f"data.path={tiny_ml100k}",
        f"output_dir={tmp_path / 'runs'}",
        "data.batch_size=32",
        "data.eval_batch_size=5",
        "model.embedding_dim=8",
        "trainer.max_epochs=2",
        "trainer.enable_progress_bar=false",
        "trainer.log_every_n_steps=1",
        "logger=csv",
    ]


@pytest.fixture(scope="session")
def ml100k_folder() -> Path:
    from lightning_divrec.data.sources.ml100k import recbole_copy

    folder = recbole_copy()
    if folder is None:
        pytest.fail("MovieLens-100K is read from the recbole wheel: pip install --no-deps recbole")
    return folder
