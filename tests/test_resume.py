"""Mid-epoch resume: the resumable training batches, ``last.ckpt`` and a run killed with SIGKILL and resumed."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from lightning_divrec.config import ConfigError, load_train_config
from lightning_divrec.data.resumable import BatchIndices, ResumableBatchSampler, ResumableDataLoader
from lightning_divrec.data.sampling import NegativeSampler
from lightning_divrec.train import train

from .conftest import write_tiny_ml100k

REPO = Path(__file__).resolve().parents[1]


def _epoch(sampler: ResumableBatchSampler, epoch: int) -> list[tuple[list[int], int]]:
    sampler.sampler.set_epoch(epoch)
    return [(list(batch), batch.seed) for batch in sampler]


def test_sampler_resumes_at_position():
    sampler = ResumableBatchSampler(size=23, batch_size=4, seed=5)
    full = _epoch(sampler, 3)
    assert len(full) == len(sampler) == 6
    assert sorted(index for batch, _ in full for index in batch) == list(range(23))
    resumed = ResumableBatchSampler(size=23, batch_size=4, seed=5)
    resumed.resume_at(3, 4)
    assert [(list(batch), batch.seed) for batch in resumed] == full[4:]
    # The skip applies to one iteration only.
    assert [(list(batch), batch.seed) for batch in resumed] == full


def test_sampler_pure_function_of_seed_and_epoch():
    first = _epoch(ResumableBatchSampler(23, 4, seed=5), 1)
    assert _epoch(ResumableBatchSampler(23, 4, seed=5), 1) == first
    torch.manual_seed(123)  # the global generator plays no part
    assert _epoch(ResumableBatchSampler(23, 4, seed=5), 1) == first
    assert _epoch(ResumableBatchSampler(23, 4, seed=5), 2) != first
    assert _epoch(ResumableBatchSampler(23, 4, seed=6), 1) != first


def test_sampler_ranks_cover_dataset():
    ranks = [ResumableBatchSampler(23, 4, seed=5, rank=rank, world_size=3) for rank in range(3)]
    epochs = [_epoch(sampler, 0) for sampler in ranks]
    assert len({len(batches) for batches in epochs}) == 1
    indices = [index for batches in epochs for batch, _ in batches for index in batch]
    # 23 examples padded to 24 so that every rank gets 8.
    assert len(indices) == 24
    assert set(indices) == set(range(23))
    seeds = [seed for batches in epochs for _, seed in batches]
    assert len(set(seeds)) == len(seeds)


def test_loader_state_round_trip():
    sampler = ResumableBatchSampler(23, 4, seed=5)
    full = _epoch(ResumableBatchSampler(23, 4, seed=5), 2)
    loader = ResumableDataLoader(range(23), sampler, lambda: (2, 3, False), collate_fn=lambda batch: batch)
    state = loader.state_dict()
    assert state == {"epoch": 2, "batches_done": 3, "epoch_finished": False, "batches_per_epoch": 6, "world_size": 1, "seed": 5}

    fresh = ResumableBatchSampler(23, 4, seed=5)
    ResumableDataLoader(range(23), fresh, lambda: (0, 0, False)).load_state_dict(state)
    assert fresh.epoch == 2
    assert [(list(batch), batch.seed) for batch in fresh] == full[3:]

    finished = ResumableBatchSampler(23, 4, seed=5)
    ResumableDataLoader(range(23), finished, lambda: (0, 0, False)).load_state_dict(state | {"epoch_finished": True})
    assert finished.epoch == 3
    assert [(list(batch), batch.seed) for batch in finished] == _epoch(ResumableBatchSampler(23, 4, seed=5), 3)


def test_loader_restarts_epoch_on_other_layout(caplog):
    state = {"epoch": 2, "batches_done": 3, "epoch_finished": False, "batches_per_epoch": 6, "world_size": 2, "seed": 5}
    sampler = ResumableBatchSampler(23, 4, seed=5)
    ResumableDataLoader(range(23), sampler, lambda: (0, 0, False)).load_state_dict(state)
    assert "epoch 2 starts again from its first batch" in caplog.text
    assert [(list(batch), batch.seed) for batch in sampler] == _epoch(ResumableBatchSampler(23, 4, seed=5), 2)


def test_resume_position_outside_epoch_rejected():
    with pytest.raises(ValueError, match="resume position 7 is outside the epoch's 6 batches"):
        ResumableBatchSampler(23, 4, seed=5).resume_at(0, 7)


def test_batch_negatives_follow_batch_seed(tiny_overrides):
    from lightning_divrec.data import RecDataModule

    cfg = load_train_config(tiny_overrides)
    datamodule = RecDataModule(cfg.data, seed=cfg.seed)
    datamodule.setup("fit")
    dataset = datamodule.train_dataset
    indices = list(range(0, len(dataset), 2))
    torch.manual_seed(0)
    first = dataset.__getitems__(BatchIndices(indices, seed=11))["negatives"]
    torch.manual_seed(1)
    again = dataset.__getitems__(BatchIndices(indices, seed=11))["negatives"]
    other = dataset.__getitems__(BatchIndices(indices, seed=12))["negatives"]
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    sampler: NegativeSampler = datamodule.negative_sampler
    assert not sampler.is_positive(dataset.users[indices], first).any()


def test_checkpoint_interval_validated(tiny_overrides):
    with pytest.raises(ConfigError, match="checkpoint.every_n_train_steps=0 must be at least 1"):
        train(load_train_config(tiny_overrides + ["checkpoint.every_n_train_steps=0"]))


def test_last_checkpoint_follows_every_epoch(tiny_overrides, tmp_path):
    # With a learning rate of 0 the validation metric never improves after
    # the first epoch, so only the best checkpoint stays at epoch 0.
    overrides = tiny_overrides + ["run_name=frozen", "model.lr=0.0", "trainer.max_epochs=3", "trainer.early_stopping_patience=null"]
    metrics = train(load_train_config(overrides))
    folder = tmp_path / "runs" / "frozen" / "checkpoints"
    last = torch.load(folder / "last.ckpt", map_location="cpu", weights_only=True)
    best = torch.load(folder / "best.ckpt", map_location="cpu", weights_only=True)
    assert best["epoch"] == 0
    assert last["epoch"] == 2
    assert last["loops"]["fit_loop"]["epoch_progress"]["total"]["processed"] == 3
    assert metrics["epochs_trained"] == 3


def test_mid_epoch_checkpoint_written(tiny_overrides, monkeypatch):
    # About 60 training triples in batches of 4, so about 15 batches: steps 7
    # and 14 fall inside the epoch.
    overrides = tiny_overrides + ["run_name=steps", "data.batch_size=4", "trainer.max_epochs=1", "checkpoint.every_n_train_steps=7"]
    saved = []
    original = torch.save

    def recording_save(checkpoint, stream, *args, **kwargs):
        if isinstance(checkpoint, dict) and "loops" in checkpoint:
            loader = checkpoint["loops"]["fit_loop"]["state_dict"]["combined_loader"][0]
            saved.append((checkpoint["global_step"], loader["batches_done"], loader["epoch_finished"]))
        return original(checkpoint, stream, *args, **kwargs)

    # Records what the real torch.save writes; the files are still written.
    monkeypatch.setattr(torch, "save", recording_save)
    train(load_train_config(overrides))
    batches = saved[-1][1]
    expected_mid = [(step, step, False) for step in range(7, batches, 7)]
    assert saved[: len(expected_mid)] == expected_mid
    assert (batches, batches, True) in saved


def _train_process(*args: str) -> subprocess.Popen:
    env = os.environ | {"WANDB_SILENT": "true", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, str(REPO / "train.py"), *args], cwd=REPO, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )


def _finish(process: subprocess.Popen) -> str:
    output, _ = process.communicate(timeout=900)
    assert process.returncode == 0, output[-3000:]
    return output


def _kill_and_resume(tmp_path: Path, batch_size: int, *extra: str) -> None:
    """Kill a run with SIGKILL after its first mid-epoch ``last.ckpt``, resume it, and compare with a run never stopped."""
    data = write_tiny_ml100k(tmp_path / "data", num_users=200, num_items=60)
    common = [
        f"data.path={data}", f"output_dir={tmp_path / 'runs'}", f"data.batch_size={batch_size}",
        "data.eval_batch_size=50", "model.embedding_dim=8", "trainer.max_epochs=2",
        "trainer.early_stopping_patience=null", "trainer.enable_progress_bar=false",
        "trainer.log_every_n_steps=1", "logger=csv", *extra,
    ]
    every = ["checkpoint.every_n_train_steps=20"]
    reference = _train_process(*common, "run_name=uninterrupted")
    killed = _train_process(*common, *every, "run_name=killed")
    run_dir = tmp_path / "runs" / "killed"
    last = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 600
    while not last.exists() and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    # The whole process group, so that DDP workers die with the launcher.
    os.killpg(killed.pid, signal.SIGKILL)
    output, _ = killed.communicate(timeout=60)
    assert killed.returncode == -signal.SIGKILL, f"the run ended before it was killed:\n{output[-3000:]}"
    assert not (run_dir / "metrics.json").exists()

    checkpoint = torch.load(last, map_location="cpu", weights_only=True)
    loader = checkpoint["loops"]["fit_loop"]["state_dict"]["combined_loader"][0]
    progress = checkpoint["loops"]["fit_loop"]["epoch_loop.batch_progress"]["current"]
    assert not loader["epoch_finished"]
    assert 0 < loader["batches_done"] < loader["batches_per_epoch"]
    assert progress["processed"] == loader["batches_done"]
    assert checkpoint["global_step"] % 20 == 0

    _finish(_train_process(*common, *every, "run_name=killed", "resume=last"))
    _finish(reference)
    resumed = json.loads((run_dir / "metrics.json").read_text())
    expected = json.loads((tmp_path / "runs" / "uninterrupted" / "metrics.json").read_text())
    assert resumed["epochs_trained"] == expected["epochs_trained"] == 2
    for split in ("val", "test"):
        assert resumed[split].keys() == expected[split].keys()
        for name, value in expected[split].items():
            assert resumed[split][name] == pytest.approx(value, abs=1e-6), name
    assert resumed["test"] == expected["test"]

    # The resumed part trained only the steps after the checkpoint.
    resumed_csv = next((run_dir / "csv").glob("resumed-*/metrics.csv"))
    with resumed_csv.open() as handle:
        steps = [int(row["step"]) for row in csv.DictReader(handle) if row.get("train/loss_step")]
    with (tmp_path / "runs" / "uninterrupted" / "csv" / "metrics.csv").open() as handle:
        all_steps = [int(row["step"]) for row in csv.DictReader(handle) if row.get("train/loss_step")]
    assert steps == [step for step in all_steps if step >= checkpoint["global_step"]]


def test_killed_run_resumes_mid_epoch(tmp_path):
    """One process: 128 batches per epoch and a checkpoint every 20 steps."""
    _kill_and_resume(tmp_path, 8)


@pytest.mark.distributed
def test_killed_ddp_run_resumes_mid_epoch(tmp_path):
    """Two gloo processes: each rank's position and random draws come back."""
    _kill_and_resume(tmp_path, 16, "trainer=ddp_sim")
