"""Distillation: losses, the frozen teacher, the student checkpoint and a tiny end-to-end run."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
import torch.nn.functional as F

from lightning_divrec.config import load_evaluate_config, load_train_config
from lightning_divrec.data import RecDataModule
from lightning_divrec.evaluate import evaluate
from lightning_divrec.models import DistillationModule
from lightning_divrec.models.distill_losses import listwise_kd_loss, position_weights, ranking_distillation_loss
from lightning_divrec.models.teacher import compute_teacher_targets, load_teacher
from lightning_divrec.train import train

# ----- losses -----------------------------------------------------------------------------------


def test_kd_loss_zero_for_equal_logits():
    logits = torch.randn(6, 9) * 5
    mask = torch.rand(6, 9) > 0.3
    mask[:, 0] = True
    for temperature in (0.5, 1.0, 4.0):
        assert listwise_kd_loss(logits, logits.clone(), temperature).item() == 0.0
        assert listwise_kd_loss(logits, logits.clone(), temperature, mask).item() == 0.0


def test_kd_loss_matches_kl_divergence():
    torch.manual_seed(0)
    student, teacher = torch.randn(4, 7), torch.randn(4, 7)
    temperature = 2.0
    # Independent reference: torch's kl_div with batchmean, times T^2.
    expected = F.kl_div(
        F.log_softmax(student / temperature, dim=1),
        F.log_softmax(teacher / temperature, dim=1),
        reduction="batchmean",
        log_target=True,
    ) * temperature**2
    assert listwise_kd_loss(student, teacher, temperature).item() == pytest.approx(expected.item(), rel=1e-6)


def test_kd_loss_mask_drops_candidates():
    torch.manual_seed(1)
    student, teacher = torch.randn(3, 6), torch.randn(3, 6)
    mask = torch.tensor([[True] * 4 + [False] * 2] * 3)
    assert listwise_kd_loss(student, teacher, 1.5, mask).item() == pytest.approx(
        listwise_kd_loss(student[:, :4], teacher[:, :4], 1.5).item(), rel=1e-6
    )


def test_kd_loss_positive_for_different_rankings():
    student = torch.tensor([[3.0, 2.0, 1.0]])
    teacher = torch.tensor([[1.0, 2.0, 3.0]])
    assert listwise_kd_loss(student, teacher).item() > 0.1


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_kd_losses_finite_under_cpu_autocast(dtype):
    torch.manual_seed(2)
    users = torch.randn(8, 16, requires_grad=True)
    items = torch.randn(40, 16)
    with torch.autocast("cpu", dtype=dtype):
        # Scores of magnitude ~1e3: exp() of them overflows in fp16 and bf16 alike.
        student = (users * 30) @ items.T  # [8, 40] in the autocast dtype
        teacher = (users.detach() * 30) @ items.flip(0).T
        assert student.dtype == dtype
        kd = listwise_kd_loss(student, teacher, temperature=2.0)
        rd = ranking_distillation_loss(student[:, :5], student[:, 5:], position_weights(5, 2.0))
    assert kd.dtype == torch.float32
    assert rd.dtype == torch.float32
    assert math.isfinite(kd.item())
    assert kd.item() > 0
    assert math.isfinite(rd.item())
    (kd + rd).backward()
    assert torch.isfinite(users.grad).all()


def test_position_weights_decay_and_sum():
    weights = position_weights(4, decay=2.0)
    assert weights.sum().item() == pytest.approx(1.0)
    assert weights[1].item() / weights[0].item() == pytest.approx(math.exp(-0.5))
    assert torch.all(weights[1:] < weights[:-1])


def test_ranking_distillation_worked_case():
    # One row, two teacher items with weights 0.75 and 0.25, one negative at 0.
    top = torch.tensor([[2.0, -1.0]])
    negatives = torch.tensor([[0.0]])
    weights = torch.tensor([0.75, 0.25])
    expected = 0.75 * math.log1p(math.exp(-2.0)) + 0.25 * math.log1p(math.exp(1.0))
    assert ranking_distillation_loss(top, negatives, weights).item() == pytest.approx(expected, rel=1e-6)
    # Dropping the second rank renormalises the weights onto the first.
    top_mask = torch.tensor([[True, False]])
    assert ranking_distillation_loss(top, negatives, weights, top_mask).item() == pytest.approx(
        math.log1p(math.exp(-2.0)), rel=1e-6
    )


# ----- teacher and module -----------------------------------------------------------------------


@pytest.fixture
def teacher_run(tiny_overrides) -> dict:
    """Train a tiny GraphSAGE teacher and return ``train``'s metrics (its checkpoint path among them)."""
    return train(load_train_config(tiny_overrides + ["run_name=teacher", "model.embedding_dim=16"]))


def _distill_overrides(tiny_overrides: list[str], teacher_checkpoint: str, *extra: str) -> list[str]:
    return [item for item in tiny_overrides if not item.startswith("model.")] + [
        "model=distill",
        f"model.teacher_ckpt={teacher_checkpoint}",
        "model.student.embedding_dim=4",
        "model.student.num_layers=0",
        "model.student.dropout=0.0",
        "model.teacher_top_m=6",
        "model.kd_negatives=5",
        "model.rd_top_k=3",
        *extra,
    ]


def _datamodule(overrides: list[str]) -> tuple[RecDataModule, dict]:
    from omegaconf import OmegaConf

    cfg = load_train_config(overrides)
    datamodule = RecDataModule(cfg.data, seed=cfg.seed)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule, OmegaConf.to_container(cfg, resolve=True)


def test_teacher_frozen_across_training(tiny_overrides, teacher_run):
    overrides = _distill_overrides(tiny_overrides, teacher_run["best_checkpoint"], "model.rd_weight=1.0")
    datamodule, container = _datamodule(overrides)
    model = DistillationModule(
        datamodule.num_users, datamodule.num_items, container["model"], container["eval"]["ks"], run_config=container
    )
    trainer = L.Trainer(
        max_epochs=3, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, accelerator="cpu", num_sanity_val_steps=0,
    )
    student_before = {name: value.clone() for name, value in model.student.state_dict().items()}
    trainer.fit(model, datamodule=datamodule)

    teacher = model.teacher
    assert teacher is not None
    reference = load_teacher(teacher_run["best_checkpoint"], datamodule)
    for name, value in reference.state_dict().items():
        assert torch.equal(teacher.state_dict()[name].cpu(), value), name
    for name, parameter in teacher.named_parameters():
        assert parameter.grad is None, name
        assert not parameter.requires_grad, name
    assert not teacher.training
    assert all(not module.training for module in teacher.modules())
    optimised = {id(parameter) for group in trainer.optimizers[0].param_groups for parameter in group["params"]}
    assert optimised.isdisjoint(id(parameter) for parameter in teacher.parameters())
    assert optimised == {id(parameter) for parameter in model.student.parameters()}
    # The student did learn, so the steps ran.
    changed = [name for name, value in model.student.state_dict().items() if not torch.equal(value, student_before[name])]
    assert changed
    for key in ("train/task_loss_epoch", "train/kd_loss_epoch", "train/rd_loss_epoch"):
        assert math.isfinite(float(trainer.logged_metrics[key])), key


def test_kd_term_zero_when_student_is_teacher(tiny_overrides, teacher_run):
    """A student with the teacher's architecture and weights gets a KD loss of (numerically) zero."""
    checkpoint = torch.load(teacher_run["best_checkpoint"], map_location="cpu", weights_only=True)
    teacher_model = checkpoint["hyper_parameters"]["run_config"]["model"]
    overrides = _distill_overrides(tiny_overrides, teacher_run["best_checkpoint"])
    datamodule, container = _datamodule(overrides)
    config = container["model"] | {"student": teacher_model | {"dropout": 0.0}}
    model = DistillationModule(datamodule.num_users, datamodule.num_items, config, container["eval"]["ks"], run_config=container)
    model.setup_teacher(datamodule)
    model.attach_data(datamodule)
    model.student.load_state_dict(model.teacher.state_dict())
    targets = compute_teacher_targets(model.teacher, datamodule, 6)
    users = torch.arange(datamodule.num_users)
    model.student.eval()
    with torch.no_grad():
        student_logits = model.student.score_items(users, targets.items.clamp_min(0))
    loss = listwise_kd_loss(student_logits, targets.logits, temperature=2.0, mask=targets.valid)
    # Float32 scores from a matmul (teacher) and an elementwise sum (student) differ in the last bits.
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    with torch.no_grad():
        model.student.encoder.item_embedding.weight.mul_(3.0)
        changed_logits = model.student.score_items(users, targets.items.clamp_min(0))
    changed = listwise_kd_loss(changed_logits, targets.logits, temperature=2.0, mask=targets.valid)
    assert changed.item() > 1e-4


def test_missing_teacher_checkpoint_named(tiny_overrides, tmp_path):
    overrides = _distill_overrides(tiny_overrides, str(tmp_path / "nowhere.ckpt"))
    with pytest.raises(FileNotFoundError, match="model.teacher_ckpt=.*nowhere.ckpt"):
        train(load_train_config(overrides + ["run_name=no-teacher"]))
    assert not (tmp_path / "runs" / "no-teacher").exists()


def test_teacher_on_other_split_rejected(tiny_overrides, teacher_run):
    overrides = _distill_overrides(tiny_overrides, teacher_run["best_checkpoint"], "data.split=random_811")
    with pytest.raises(ValueError, match="other data or another split"):
        train(load_train_config(overrides + ["run_name=other-split"]))


# ----- end to end -------------------------------------------------------------------------------


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_distill_train_end_to_end(tiny_overrides, teacher_run, tmp_path, precision):
    overrides = _distill_overrides(
        tiny_overrides, teacher_run["best_checkpoint"], f"trainer.precision={precision}", "model.rd_weight=0.5"
    )
    metrics = train(load_train_config(overrides + ["run_name=student"]))
    run_dir = tmp_path / "runs" / "student"
    assert 0.0 <= metrics["test"]["test/ndcg@10"] <= 1.0
    report = json.loads((run_dir / "distillation_report.json").read_text())
    assert report["teacher_model"] == "graphsage"
    assert report["student_params"] == (12 + 15) * 4
    assert report["teacher_params"] > report["student_params"]
    assert report["test"]["test/ndcg@10"] == pytest.approx(metrics["test"]["test/ndcg@10"])
    assert report["teacher_scoring"]["batch_seconds"] > 0
    losses = [row for row in (run_dir / "csv" / "metrics.csv").read_text().splitlines()[1:] if row]
    header = (run_dir / "csv" / "metrics.csv").read_text().splitlines()[0].split(",")
    for key in ("train/task_loss_step", "train/kd_loss_step", "train/rd_loss_step"):
        assert key in header, key
        column = header.index(key)
        values = [float(row.split(",")[column]) for row in losses if row.split(",")[column]]
        assert values and all(math.isfinite(value) for value in values), key


def test_student_checkpoint_evaluates_without_teacher(tiny_overrides, teacher_run, tmp_path):
    overrides = _distill_overrides(tiny_overrides, teacher_run["best_checkpoint"], "model.teacher_rerank=mmr")
    metrics = train(load_train_config(overrides + ["run_name=student"]))
    checkpoint_path = Path(metrics["best_checkpoint"])
    checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    keys = list(checkpoint["state_dict"])
    assert keys and all(key.startswith("student.") for key in keys), keys
    assert not any("teacher" in key for key in keys)

    Path(teacher_run["best_checkpoint"]).unlink()
    Path(teacher_run["run_dir"], "checkpoints", "last.ckpt").unlink()
    results = evaluate(load_evaluate_config([f"ckpt_path={checkpoint_path}", "rerank.methods=[]"]))
    for name, value in metrics["test"].items():
        assert results[name] == pytest.approx(value, abs=1e-6), name


# ----- scoring benchmark ------------------------------------------------------------------------


def test_scoring_benchmark_reads_both_checkpoints(tiny_overrides, teacher_run, tmp_path):
    overrides = _distill_overrides(tiny_overrides, teacher_run["best_checkpoint"])
    student_run = train(load_train_config(overrides + ["run_name=student"]))
    output = tmp_path / "scoring.json"
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "distill_scoring.py"
    command = [
        sys.executable, str(script), "--teacher", teacher_run["best_checkpoint"],
        "--student", student_run["best_checkpoint"], "--repeats", "2", "--threads", "1", "--output", str(output),
    ]
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=300)

    record = json.loads(output.read_text())
    teacher_checkpoint = torch.load(teacher_run["best_checkpoint"], map_location="cpu", weights_only=True)
    teacher_params = sum(tensor.numel() for tensor in teacher_checkpoint["state_dict"].values())
    assert record["teacher"]["params"] == teacher_params
    (student,) = record["students"]
    assert student["model"] == "distill"
    assert student["params"] == (12 + 15) * 4
    assert student["param_ratio"] == pytest.approx((12 + 15) * 4 / teacher_params)
    assert student["pass_seconds"] > 0
    assert student["pass_speedup"] == pytest.approx(record["teacher"]["pass_seconds"] / student["pass_seconds"])
    assert record["teacher"]["users"] == student["users"] > 0
    assert record["threads"] == 1


def test_scoring_benchmark_rejects_other_split(tiny_overrides, teacher_run, tmp_path):
    other = train(load_train_config(tiny_overrides + ["run_name=other", "data.split=random_811"]))
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "distill_scoring.py"
    command = [sys.executable, str(script), "--teacher", teacher_run["best_checkpoint"], "--student", other["best_checkpoint"]]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "other data or another split" in result.stderr


def test_text_teacher_distils_student(tiny_overrides, tmp_path, monkeypatch):
    """A teacher whose item tower reads all-MiniLM-L6-v2 title embeddings (local package) teaches an id-only student."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cache = f"data.cache_dir={tmp_path / 'cache'}"
    teacher = train(load_train_config(tiny_overrides + ["run_name=text-teacher", "model.item_features=[text]", cache]))
    datamodule, _ = _datamodule(tiny_overrides + [cache])
    loaded = load_teacher(teacher["best_checkpoint"], datamodule)
    assert loaded.encoder.item_feature_projection.in_features == 384  # the MiniLM embedding width
    overrides = _distill_overrides(tiny_overrides, teacher["best_checkpoint"], cache)
    metrics = train(load_train_config(overrides + ["run_name=student"]))
    report = json.loads((tmp_path / "runs" / "student" / "distillation_report.json").read_text())
    assert report["teacher_params"] - report["student_params"] >= 384 * 8  # the projection of the text tower
    assert math.isfinite(metrics["test"]["test/ndcg@10"])
