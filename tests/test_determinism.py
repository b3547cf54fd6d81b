"""Bit-for-bit repeatable CPU training: GraphSAGE gradients on several threads and a seeded run."""

from __future__ import annotations

import lightning as L
import pytest
import torch
from omegaconf import OmegaConf

from lightning_divrec.config import load_train_config
from lightning_divrec.data import RecDataModule
from lightning_divrec.data.resumable import BatchIndices
from lightning_divrec.models import MODELS
from lightning_divrec.train import train


@pytest.fixture
def two_threads():
    # The drift needs a multi-threaded kernel; two threads run on one core too.
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)


def test_graphsage_gradients_repeat(two_threads, ml100k_folder):
    """One GraphSAGE training step on MovieLens-100K, repeated: equal gradients every time.

    With ``users_all[batch["users"]]`` in the step, whose backward is
    ``index_put_`` with accumulation, the gradients differed in most repeats
    on 2 threads (torch 2.13 CPU build).
    """
    cfg = load_train_config([f"data.path={ml100k_folder}", "logger=csv"])
    L.seed_everything(cfg.seed, verbose=False)
    datamodule = RecDataModule(cfg.data, seed=cfg.seed)
    datamodule.setup("fit")
    container = OmegaConf.to_container(cfg, resolve=True)
    model = MODELS["graphsage"].from_datamodule(datamodule, container["model"], container["eval"]["ks"], run_config=container)
    model.attach_data(datamodule)
    batch = datamodule.train_dataset.__getitems__(BatchIndices(list(range(2048)), seed=0))

    def gradients() -> list[torch.Tensor]:
        model.zero_grad(set_to_none=True)
        torch.manual_seed(0)  # the same dropout masks in every repeat
        model.training_step(batch, 1).backward()
        return [parameter.grad.clone() for parameter in model.parameters() if parameter.grad is not None]

    first = gradients()
    assert first
    for repeat in range(10):
        again = gradients()
        for index, (expected, found) in enumerate(zip(first, again)):
            assert torch.equal(expected, found), f"repeat {repeat}, parameter {index}"


def test_deterministic_run_repeats(tiny_overrides):
    overrides = tiny_overrides + ["trainer.deterministic=true", "trainer.max_epochs=4", "model.dropout=0.5"]
    first = train(load_train_config(overrides + ["run_name=deterministic-a"]))
    second = train(load_train_config(overrides + ["run_name=deterministic-b"]))
    assert first["val"] == second["val"]
    assert first["test"] == second["test"]
