"""The RecBole side-by-side harness: split export, split comparison, scoring of foreign scores, ratios.

The last test starts RecBole itself and runs only where
``benchmarks/recbole/setup_env.sh`` has created RecBole's environment.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks" / "recbole"))
sys.path.insert(0, str(ROOT / "benchmarks"))

import export_split  # noqa: E402
import recbole_seeds  # noqa: E402
import recbole_side_by_side  # noqa: E402
import run_ours  # noqa: E402

from lightning_divrec.config.loading import load_train_config  # noqa: E402
from lightning_divrec.data import RecDataModule  # noqa: E402
from lightning_divrec.data.sources.recbole_atomic import read_atomic_interactions  # noqa: E402
from lightning_divrec.data.splits import leave_one_out, random_ratio_split  # noqa: E402
from lightning_divrec.metrics import RankingMetricSuite  # noqa: E402

RECBOLE_PYTHON = ROOT / "benchmarks" / "recbole" / ".venv" / "bin" / "python"


def pairs_of(data, index) -> set[tuple[int, int]]:
    return set(zip(data.user_ids[data.user[index]].tolist(), data.item_ids[data.item[index]].tolist()))


def test_export_round_trip(tmp_path, tiny_ml100k):
    data, split = export_split.export_split(tmp_path, seed=3, path=str(tiny_ml100k))
    folder = tmp_path / export_split.DATASET
    for name in export_split.PARTS:
        written = read_atomic_interactions(folder / f"{export_split.DATASET}.{name}.inter")
        assert set(zip(written["user"], written["item"])) == pairs_of(data, getattr(split, name))
        assert len(written) == len(getattr(split, name))
    whole = read_atomic_interactions(folder / f"{export_split.DATASET}.inter")
    assert len(whole) == len(data)
    assert not list(folder.glob("*.tmp"))


def test_loo_export_orders_ties_our_way(tmp_path, tiny_ml100k):
    pairs = recbole_side_by_side.export_loo(tmp_path, path=str(tiny_ml100k))
    data = export_split.load_ml100k(str(tiny_ml100k))
    written = read_atomic_interactions(tmp_path / export_split.DATASET / f"{export_split.DATASET}.inter")
    assert len(written) == len(data)
    assert written["timestamp"].is_unique
    assert data.timestamp.size > np.unique(np.stack([data.user, data.timestamp]), axis=1).shape[1], "no time ties to order"
    # Per user, the written timestamps order the items as leave_one_out does: by time, ties by item index.
    index_of_item = {str(item): index for index, item in enumerate(data.item_ids)}
    for user, rows in written.groupby("user"):
        items_by_written_time = [index_of_item[str(item)] for item in rows.sort_values("timestamp")["item"]]
        user_index = list(map(str, data.user_ids)).index(str(user))
        mine = np.flatnonzero(data.user == user_index)
        expected = data.item[mine[np.lexsort((data.item[mine], data.timestamp[mine]))]].tolist()
        assert items_by_written_time == expected
    split = leave_one_out(data)
    assert pairs == export_split.split_pairs(data, split)
    assert not list((tmp_path / export_split.DATASET).glob("*.tmp"))


def test_permutation_replaces_shuffle(tiny_ml100k):
    data, _ = export_split.export_split(tiny_ml100k.parent / "out", seed=0, path=str(tiny_ml100k))
    identity = random_ratio_split(data, permutation=np.arange(len(data)))
    # With no shuffle, each user's test items are the user's last rows in file order.
    for user in range(data.num_users):
        rows = np.flatnonzero(data.user == user)
        test_rows = identity.test[data.user[identity.test] == user]
        assert np.array_equal(test_rows, rows[len(rows) - len(test_rows) :])
    seeded = random_ratio_split(data, seed=5)
    explicit = random_ratio_split(data, permutation=np.random.default_rng(5).permutation(len(data)))
    assert np.array_equal(seeded.test, explicit.test)
    assert np.array_equal(seeded.valid, explicit.valid)


@pytest.mark.parametrize("permutation", [np.zeros(3, dtype=np.int64), np.array([0, 0, 1])])
def test_permutation_rejects_invalid(tiny_ml100k, permutation):
    data, _ = export_split.export_split(tiny_ml100k.parent / "out", seed=0, path=str(tiny_ml100k))
    if len(permutation) == 3:
        permutation = np.r_[permutation, np.arange(3, len(data))]
    with pytest.raises(ValueError, match="permutation must hold"):
        random_ratio_split(data, permutation=permutation)


def test_compare_splits_cases():
    ours = {"train": {("1", "a"), ("1", "b"), ("2", "c")}, "valid": {("1", "c")}, "test": {("2", "a")}}
    same = {name: set(pairs) for name, pairs in ours.items()}
    report = export_split.compare_splits(ours, same)
    assert report["identical"]
    assert report["same_part_sizes_per_user"]
    assert report["parts"]["train"]["shared"] == 3

    # User 1 swaps one training and one validation item: sizes per user stay, pairs differ.
    swapped = {"train": {("1", "c"), ("1", "b"), ("2", "c")}, "valid": {("1", "a")}, "test": {("2", "a")}}
    report = export_split.compare_splits(ours, swapped)
    assert not report["identical"]
    assert report["same_part_sizes_per_user"]
    assert report["parts"]["valid"]["shared"] == 0
    assert report["parts"]["train"]["shared"] == 2

    # A pair moves from user 1's training part to its test part: sizes differ.
    moved = {"train": {("1", "b"), ("2", "c")}, "valid": {("1", "c")}, "test": {("2", "a"), ("1", "a")}}
    report = export_split.compare_splits(ours, moved)
    assert not report["same_part_sizes_per_user"]


def test_foreign_scores_match_direct_suite(tiny_ml100k):
    """Scores given with shuffled rows, shuffled columns and string ids give the suite's direct result."""
    cfg = load_train_config(run_ours.PROTOCOL + [f"data.path={tiny_ml100k}", "data.eval_batch_size=5"])
    datamodule = RecDataModule(cfg.data, seed=0)
    datamodule.setup("test")
    data = datamodule.interactions
    generator = torch.Generator().manual_seed(0)
    scores = torch.randn(data.num_users, data.num_items, generator=generator)  # [U, I] in our order

    stage = datamodule.stages["test"]
    direct = RankingMetricSuite(
        cfg.eval.ks, data.num_items, item_categories=datamodule.item_categories,
        item_popularity=datamodule.item_popularity, num_users=datamodule.num_users,
        item_interactions=datamodule.item_interaction_counts,
    )
    users = stage.users
    batch = scores[torch.from_numpy(users)].clone()
    history = torch.zeros_like(batch, dtype=torch.bool)
    target = torch.zeros_like(batch, dtype=torch.bool)
    rows, items = stage.exclude.gather(users)
    history[rows, items] = True
    rows, items = stage.targets.gather(users)
    target[rows, items] = True
    direct.update(batch.masked_fill(history, float("-inf")), target, history=history)
    expected = {f"test/{name}": float(value) for name, value in direct.compute().items()}

    user_order = torch.randperm(data.num_users, generator=generator)
    item_order = torch.randperm(data.num_items, generator=generator)
    foreign = scores[user_order][:, item_order]
    user_ids = data.user_ids[user_order.numpy()].astype(str)
    item_ids = data.item_ids[item_order.numpy()].astype(str)
    got = run_ours.score_with_suite(datamodule, user_ids, item_ids, foreign, cfg.eval.ks)
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, abs=1e-9), name


def test_foreign_scores_missing_item(tiny_ml100k):
    cfg = load_train_config(run_ours.PROTOCOL + [f"data.path={tiny_ml100k}"])
    datamodule = RecDataModule(cfg.data, seed=0)
    datamodule.setup("test")
    data = datamodule.interactions
    scores = torch.zeros(data.num_users, data.num_items - 1)
    with pytest.raises(ValueError, match="item ids missing from the scores"):
        run_ours.score_with_suite(datamodule, data.user_ids, data.item_ids[:-1], scores, [10], "x.npz")


def test_ratios_and_targets():
    results = {
        "ours-bpr-mf": {
            "seconds_per_train_epoch": 1.0, "seconds_full_test_evaluation": 0.3,
            "scoring": {"score_speed_vs_bare_product": 0.8},
        },
        "recbole-BPR": {"seconds_per_train_epoch": 4.0, "seconds_full_test_evaluation": 1.0},
    }
    rows = {row["measure"]: row for row in recbole_side_by_side.performance_ratios(results)}
    epoch = rows["training epoch, bpr-mf / RecBole BPR"]
    assert epoch["value"] == pytest.approx(1.0 / 4.0)
    assert epoch["met"] is True
    evaluation = rows["full test evaluation, bpr-mf with the whole suite / RecBole BPR"]
    assert evaluation["value"] == pytest.approx(0.3)
    assert evaluation["met"] is False
    assert rows["scoring speed of bpr-mf / bare matrix product"]["met"] is True
    assert epoch["factor_beyond_target"] == pytest.approx(0.25 / 0.5)
    assert evaluation["factor_beyond_target"] == pytest.approx(0.3 / 0.2)
    assert not any("graphsage" in measure for measure in rows)


def test_ndcg_ratio_uses_better_baseline():
    timings = {"seconds_per_train_epoch": 1.0, "seconds_full_test_evaluation": 1.0}
    results = {
        "ours-graphsage": {"test": {"test/ndcg@10": 0.315}} | timings,
        "recbole-BPR": {"test": {"test/ndcg@10": 0.28}} | timings,
        "recbole-LightGCN": {"test": {"test/ndcg@10": 0.30}} | timings,
    }
    measure = "test NDCG@10, graphsage / the better of RecBole BPR and LightGCN in this run"
    row = {row["measure"]: row for row in recbole_side_by_side.performance_ratios(results)}[measure]
    assert row["value"] == pytest.approx(0.315 / 0.30)
    assert row["met"] is True
    results["recbole-BPR"]["test"]["test/ndcg@10"] = 0.31
    row = {row["measure"]: row for row in recbole_side_by_side.performance_ratios(results)}[measure]
    assert row["value"] == pytest.approx(0.315 / 0.31)
    assert row["met"] is False
    assert row["factor_beyond_target"] == pytest.approx(1.05 / (0.315 / 0.31))


@pytest.mark.slow
@pytest.mark.skipif(not RECBOLE_PYTHON.is_file(), reason="RecBole's environment is missing; run benchmarks/recbole/setup_env.sh")
def test_recbole_split_equals_ours_with_its_shuffle(tmp_path, tiny_ml100k):
    """RecBole 1.2.1's own 8:1:1 split equals our split rule fed with RecBole's shuffle."""
    seed = 7
    data, split = export_split.export_split(tmp_path / "data", seed=seed, path=str(tiny_ml100k))
    subprocess.run(
        [str(RECBOLE_PYTHON), str(ROOT / "benchmarks/recbole/run_recbole.py"), "split", "--data-dir",
         str(tmp_path / "data"), "--seed", str(seed), "--output", str(tmp_path / "theirs")],
        check=True, capture_output=True,
    )
    theirs = export_split.read_pairs(tmp_path / "theirs")
    same_shuffle = random_ratio_split(data, seed=seed, permutation=export_split.recbole_shuffle(len(data), seed))
    report = export_split.compare_splits(export_split.split_pairs(data, same_shuffle), theirs)
    assert report["identical"], report


def _write_side_by_side(folder: Path, command: str, ndcg: dict) -> Path:
    folder.mkdir()
    results = {model: {"test": {"test/ndcg@10": value}} for model, value in ndcg.items()}
    (folder / "side_by_side.json").write_text(json.dumps({"command": command, "results": results}))
    return folder


def test_seed_summary(tmp_path):
    first = _write_side_by_side(
        tmp_path / "a", "python benchmarks/recbole_side_by_side.py --seed 1` then `python ... --seed 1 --add",
        {"recbole-BPR": 0.28, "recbole-LightGCN": 0.29, "ours-graphsage": 0.30},
    )
    second = _write_side_by_side(
        tmp_path / "b", "python benchmarks/recbole_side_by_side.py",
        {"recbole-BPR": 0.30, "recbole-LightGCN": 0.27, "ours-graphsage": 0.33},
    )
    summary = recbole_seeds.summarise([recbole_seeds.read_run(first), recbole_seeds.read_run(second)])
    assert [run["seed"] for run in summary["runs"]] == [1, 42]
    assert summary["models"]["ours-graphsage"]["mean"] == pytest.approx(0.315)
    assert summary["models"]["ours-graphsage"]["sd"] == pytest.approx(np.std([0.30, 0.33], ddof=1))
    ratios = [row["ratio"] for row in summary["graphsage_ratio_per_seed"]]
    assert ratios == pytest.approx([0.30 / 0.29, 0.33 / 0.30])
    # mean NDCG@10: BPR 0.29, LightGCN 0.28, so BPR is the better baseline here
    assert summary["graphsage_ratio_of_means"] == pytest.approx(0.315 / 0.29)
    assert "| ours-graphsage | 0.3000 | 0.3300 | 0.3150 |" in recbole_seeds.markdown(summary)


def test_seed_summary_rejects_bad_folders(tmp_path):
    mixed = _write_side_by_side(tmp_path / "mixed", "python x.py --seed 1` then `python x.py --seed 2 --add", {"ours-graphsage": 0.3})
    with pytest.raises(SystemExit, match=r"different seeds \[1, 2\]"):
        recbole_seeds.read_run(mixed)
    with pytest.raises(SystemExit, match="side_by_side.json not found"):
        recbole_seeds.read_run(tmp_path / "absent")
