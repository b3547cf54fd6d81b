"""GraphSAGE with its default configuration against the most-popular baseline on MovieLens-100K."""

from __future__ import annotations

import pytest

from lightning_divrec.config import load_train_config
from lightning_divrec.train import train

pytestmark = pytest.mark.slow


def _test_ndcg(tmp_path, *overrides: str) -> float:
    cfg = load_train_config(
        [f"output_dir={tmp_path}", "logger=csv", "trainer.enable_progress_bar=false", *overrides]
    )
    return train(cfg)["test"]["test/ndcg@10"]


def test_graphsage_beats_popularity_leave_one_out(tmp_path):
    popularity = _test_ndcg(tmp_path, "model=popularity", "run_name=pop-loo")
    graphsage = _test_ndcg(tmp_path, "run_name=sage-loo")
    assert popularity == pytest.approx(0.025, abs=0.005)
    assert graphsage > popularity


def test_graphsage_random_split_ratio(tmp_path):
    popularity = _test_ndcg(tmp_path, "model=popularity", "data.split=random_811", "run_name=pop-811")
    graphsage = _test_ndcg(tmp_path, "data.split=random_811", "run_name=sage-811")
    assert popularity == pytest.approx(0.142, abs=0.01)
    assert graphsage >= 1.8 * popularity
