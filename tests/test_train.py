"""``train`` and ``evaluate`` end to end with a real Trainer, on tiny data and through the command line."""

from __future__ import annotations

import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from lightning_divrec.config import ConfigError, load_evaluate_config, load_train_config
from lightning_divrec.evaluate import evaluate
from lightning_divrec.train import train

from .conftest import write_tiny_ml100k

REPO = Path(__file__).resolve().parents[1]


def _run_cli(script: str, *args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = os.environ | {"WANDB_SILENT": "true"} | (env_extra or {})
    return subprocess.run(
        [sys.executable, str(REPO / script), *args], capture_output=True, text=True, cwd=REPO, env=env, timeout=600
    )


def test_train_writes_run_folder(tiny_overrides, tmp_path):
    metrics = train(load_train_config(tiny_overrides + ["run_name=tiny"]))
    run_dir = tmp_path / "runs" / "tiny"
    assert Path(metrics["run_dir"]) == run_dir
    for name in ("config.yaml", "metrics.json", "checkpoints/best.ckpt", "checkpoints/last.ckpt", "csv/metrics.csv"):
        assert (run_dir / name).is_file(), name
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved["test"] == metrics["test"]
    assert 0.0 <= metrics["test"]["test/ndcg@10"] <= 1.0
    assert metrics["test"]["test/users"] == 12
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["trainer"]["max_epochs"] == 2
    assert config["model"]["embedding_dim"] == 8
    checkpoint = torch.load(run_dir / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    assert checkpoint["hyper_parameters"]["run_config"]["model"]["embedding_dim"] == 8
    assert checkpoint["divrec"]["data_fingerprint"] == metrics["data_fingerprint"]


def test_evaluate_reproduces_test_metrics(tiny_overrides, tmp_path):
    metrics = train(load_train_config(tiny_overrides + ["run_name=repro"]))
    results = evaluate(load_evaluate_config([f"ckpt_path={metrics['best_checkpoint']}"]))
    assert results.keys() == metrics["test"].keys()
    for name, value in metrics["test"].items():
        assert results[name] == pytest.approx(value, abs=1e-6), name
    assert (tmp_path / "runs" / "repro" / "evaluation.json").is_file()


def test_evaluate_writes_tradeoff_report(tiny_overrides, tmp_path):
    metrics = train(load_train_config(tiny_overrides + ["run_name=sweep"]))
    evaluate(load_evaluate_config([f"ckpt_path={metrics['best_checkpoint']}", "rerank.grid=[0.5,1.0]"]))
    folder = tmp_path / "runs" / "sweep" / "tradeoff"
    for name in ("tradeoff.csv", "tradeoff.json", "tradeoff.png", "tradeoff.md"):
        assert (folder / name).is_file(), name
    report = json.loads((folder / "tradeoff.json").read_text())
    assert len(report["points"]) == 1 + 4 * 2  # the model's order, then mmr, mmr_mean, dpp, calibration
    baseline = report["baseline"]
    # The sweep's "none" point ranks the same lists as the test pass.
    for name in ("ndcg@10", "recall@10", "ild@10", "coverage@10", "novelty@10"):
        assert baseline[name] == pytest.approx(metrics["test"][f"test/{name}"], abs=1e-9), name
    assert report["knee"] in report["front"]


def test_tradeoff_by_embeddings_to_wandb(tiny_overrides, tmp_path):
    metrics = train(load_train_config(tiny_overrides + ["run_name=embed"]))
    output = tmp_path / "embed-eval" / "evaluation.json"
    evaluate(load_evaluate_config([
        f"ckpt_path={metrics['best_checkpoint']}", f"output_file={output}", "rerank.similarity=embeddings",
        "rerank.methods=[mmr,mmr_mean,dpp]", "rerank.grid=[1.0]", "rerank.wandb=true",
    ]))
    report = json.loads((output.parent / "tradeoff" / "tradeoff.json").read_text())
    assert report["diversity_key"] == "ild_cosine@10"
    assert all("ild_cosine@10" in point for point in report["points"])
    offline_runs = list((output.parent / "tradeoff" / "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 1
    assert json.loads(output.read_text())["tradeoff"]["knee"]["method"] in ("none", "mmr", "mmr_mean", "dpp")


def test_evaluate_rejects_bad_grid(tiny_overrides):
    metrics = train(load_train_config(tiny_overrides + ["run_name=badgrid"]))
    with pytest.raises(ValueError, match=r"rerank.grid values must lie in \(0, 1\]"):
        evaluate(load_evaluate_config([f"ckpt_path={metrics['best_checkpoint']}", "rerank.grid=[0.5,2.0]"]))


def test_popularity_baseline_ranks_by_count(tiny_overrides, tmp_path):
    # The popularity model has no embedding, so its schema rejects model.embedding_dim.
    overrides = [override for override in tiny_overrides if not override.startswith("model.")]
    metrics = train(load_train_config(overrides + ["model=popularity", "run_name=pop"]))
    assert (tmp_path / "runs" / "pop" / "checkpoints" / "best.ckpt").is_file()
    results = evaluate(load_evaluate_config([f"ckpt_path={metrics['best_checkpoint']}"]))
    assert results["test/ndcg@10"] == pytest.approx(metrics["test"]["test/ndcg@10"], abs=1e-6)


def test_validation_rerank_objective(tiny_overrides, tmp_path):
    overrides = tiny_overrides + [
        "run_name=objective", "eval.rerank_method=mmr", "eval.rerank_trade_off=0.7",
        "eval.objective_weight=0.4", "eval.monitor=val/objective",
    ]
    metrics = train(load_train_config(overrides))
    val = metrics["val"]
    expected = 0.6 * val["val_rerank/ndcg@10"] + 0.4 * val["val_rerank/ild@10"]
    assert val["val/objective"] == pytest.approx(expected, abs=1e-9)
    assert val["val_rerank/users"] == val["val/users"]
    logged = (tmp_path / "runs" / "objective" / "csv" / "metrics.csv").read_text().splitlines()[0]
    assert "val/objective" in logged
    assert "val_rerank/ild@10" in logged


def test_objective_monitor_needs_weight(tiny_overrides):
    with pytest.raises(ConfigError, match="eval.monitor=val/objective needs eval.objective_weight"):
        train(load_train_config(tiny_overrides + ["eval.monitor=val/objective"]))


def test_same_seed_repeats_bit_for_bit(tiny_overrides):
    first = train(load_train_config(tiny_overrides + ["run_name=seed-a"]))["test"]
    second = train(load_train_config(tiny_overrides + ["run_name=seed-b"]))["test"]
    other = train(load_train_config(tiny_overrides + ["run_name=seed-c", "seed=7"]))["test"]
    assert first == second
    assert first != other


def test_resume_continues_run_and_wandb(tiny_ml100k, tmp_path):
    common = [
        f"data.path={tiny_ml100k}", f"output_dir={tmp_path / 'runs'}", "run_name=resumed", "model.embedding_dim=8",
        "data.batch_size=32", "trainer.enable_progress_bar=false", "trainer.early_stopping_patience=null",
    ]
    first = train(load_train_config(common + ["trainer.max_epochs=2"]))
    run_dir = tmp_path / "runs" / "resumed"
    run_id = (run_dir / "wandb_run_id").read_text().strip()
    second = train(load_train_config(common + ["trainer.max_epochs=4", "resume=last"]))
    assert first["epochs_trained"] == 2
    assert second["epochs_trained"] == 4
    assert (run_dir / "wandb_run_id").read_text().strip() == run_id
    offline_runs = list((run_dir / "wandb").glob("offline-run-*"))
    # wandb appends "-1" to the folder name when both parts start in the same second.
    assert offline_runs and all(f"-{run_id}" in path.name for path in offline_runs)
    resumed_csv = list((run_dir / "csv").glob("resumed-*/metrics.csv"))
    assert len(resumed_csv) == 1
    with resumed_csv[0].open() as handle:
        epochs = {int(row["epoch"]) for row in csv.DictReader(handle) if row.get("epoch")}
    # Epochs 2 and 3 were trained after the resume; the final validation and test log at epoch 4.
    assert epochs == {2, 3, 4}


def test_resume_needs_existing_run(tiny_overrides):
    with pytest.raises(FileNotFoundError, match="run folder .* not found"):
        train(load_train_config(tiny_overrides + ["resume=last", "run_name=never-ran"]))


# NOTE: Lightning 2.6 replaces 16-mixed by bf16-mixed on CPU because fp16 AMP
# needs a GPU. Here 16-mixed only checks that the option is accepted, and
# test_losses.py covers the fp16 loss itself.
@pytest.mark.parametrize("precision", ["bf16-mixed", "16-mixed"])
def test_mixed_precision_trains(tiny_overrides, tmp_path, precision):
    metrics = train(load_train_config(tiny_overrides + [f"trainer.precision={precision}", "run_name=mixed"]))
    assert 0.0 <= metrics["test"]["test/ndcg@10"] <= 1.0
    with (tmp_path / "runs" / "mixed" / "csv" / "metrics.csv").open() as handle:
        losses = [float(row["train/loss_epoch"]) for row in csv.DictReader(handle) if row.get("train/loss_epoch")]
    assert len(losses) == 2
    assert all(math.isfinite(loss) for loss in losses)


def test_global_batch_must_divide(tiny_overrides, tmp_path):
    with pytest.raises(ConfigError) as caught:
        train(load_train_config(tiny_overrides + ["trainer.devices=3", "data.batch_size=100", "run_name=divide"]))
    assert "data.batch_size=100 is the global batch" in str(caught.value)
    assert "data.batch_size=99" in str(caught.value)
    assert not (tmp_path / "runs" / "divide").exists()


def test_slurm_task_mismatch_rejected(tiny_overrides, monkeypatch):
    # The variables that a Slurm step with 4 tasks sets, while the training requests 1 process.
    monkeypatch.setenv("SLURM_NTASKS", "4")
    monkeypatch.setenv("SLURM_JOB_NAME", "divrec")
    with pytest.raises(ConfigError, match="Slurm started 4 task"):
        train(load_train_config(tiny_overrides))


def test_ddp_spawn_rejected(tiny_overrides):
    with pytest.raises(ConfigError, match="trainer.strategy=ddp_spawn"):
        train(load_train_config(tiny_overrides + ["trainer.strategy=ddp_spawn"]))


def test_missing_data_leaves_no_run_folder(tiny_overrides, tmp_path):
    overrides = tiny_overrides + [f"data.path={tmp_path / 'nowhere'}", "run_name=broken"]
    with pytest.raises(FileNotFoundError, match="nowhere"):
        train(load_train_config(overrides))
    assert not (tmp_path / "runs" / "broken").exists()


def test_bad_data_row_leaves_no_run_folder(tiny_overrides, tiny_ml100k, tmp_path):
    with (tiny_ml100k / "u.data").open("a") as handle:
        handle.write("3\t4\tfive\t880000000\n")
    with pytest.raises(ValueError, match="'rating'"):
        train(load_train_config(tiny_overrides + ["run_name=badrow"]))
    assert not (tmp_path / "runs").exists()


def test_no_evaluable_user_rejected(tmp_path):
    # Every user has 2 interactions: no split can hold out validation and test items.
    folder = tmp_path / "two-each"
    write_tiny_ml100k(folder)
    rows = (folder / "u.data").read_text().splitlines()
    kept_rows, seen = [], {}
    for row in rows:
        user = row.split("\t")[0]
        if seen.get(user, 0) < 2:
            kept_rows.append(row)
            seen[user] = seen.get(user, 0) + 1
    (folder / "u.data").write_text("\n".join(kept_rows) + "\n")
    overrides = [f"data.path={folder}", f"output_dir={tmp_path / 'runs'}", "logger=csv", "run_name=none"]
    with pytest.raises(ValueError, match="leaves no validation interaction"):
        train(load_train_config(overrides))
    assert not (tmp_path / "runs").exists()


def test_missing_data_folder_named(tiny_overrides, tmp_path):
    with pytest.raises(FileNotFoundError, match="folder not found"):
        train(load_train_config(tiny_overrides + [f"data.path={tmp_path / 'absent'}"]))


def test_existing_run_folder_rejected(tiny_overrides, tmp_path):
    (tmp_path / "runs" / "taken").mkdir(parents=True)
    (tmp_path / "runs" / "taken" / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="taken"):
        train(load_train_config(tiny_overrides + ["run_name=taken"]))
    assert (tmp_path / "runs" / "taken" / "notes.txt").read_text() == "keep me"


def test_missing_checkpoint_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="ckpt_path=.*missing.ckpt: no such checkpoint"):
        evaluate(load_evaluate_config([f"ckpt_path={tmp_path / 'missing.ckpt'}"]))


def test_evaluate_rejects_changed_data(tiny_overrides, tiny_ml100k, tmp_path):
    metrics = train(load_train_config(tiny_overrides + ["run_name=changed"]))
    other = tmp_path / "other"
    other.mkdir()
    (other / "u.item").write_bytes((tiny_ml100k / "u.item").read_bytes())
    lines = (tiny_ml100k / "u.data").read_text().splitlines()
    user, item, rating, stamp = lines[0].split("\t")
    lines[0] = "\t".join([user, item, rating, str(int(stamp) + 1000)])
    (other / "u.data").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match="differs from the data"):
        evaluate(load_evaluate_config([f"ckpt_path={metrics['best_checkpoint']}", f"data_path={other}"]))


def test_cli_train_then_evaluate(tiny_ml100k, tmp_path):
    """The real command lines, with W&B in offline mode."""
    run = _run_cli(
        "train.py",
        f"data.path={tiny_ml100k}",
        f"output_dir={tmp_path / 'runs'}",
        "run_name=cli",
        "model.embedding_dim=8",
        "data.batch_size=32",
        "trainer.max_epochs=2",
        "trainer.enable_progress_bar=false",
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "test metrics:" in run.stdout
    assert "test/ndcg@10" in run.stdout
    run_dir = tmp_path / "runs" / "cli"
    offline_runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 1
    run_id = (run_dir / "wandb_run_id").read_text().strip()
    assert offline_runs[0].name.endswith(run_id)
    saved = json.loads((run_dir / "metrics.json").read_text())

    evaluation = _run_cli("evaluate.py", f"ckpt_path={run_dir / 'checkpoints' / 'best.ckpt'}")
    assert evaluation.returncode == 0, evaluation.stderr[-3000:]
    evaluated = json.loads((run_dir / "evaluation.json").read_text())["test"]
    for name, value in saved["test"].items():
        assert evaluated[name] == pytest.approx(value, abs=1e-6), name


def test_cli_reports_config_errors(tmp_path):
    run = _run_cli("train.py", "trainer.max_epoch=3", "model.lr=fast", f"output_dir={tmp_path}")
    assert run.returncode == 2
    assert "'trainer.max_epoch'" in run.stderr
    assert "did you mean 'trainer.max_epochs'" in run.stderr
    assert "'model.lr' must be a number" in run.stderr
    assert "Traceback" not in run.stderr
    assert list(tmp_path.iterdir()) == []


def test_cli_help_lists_groups():
    run = _run_cli("train.py", "--help")
    assert run.returncode == 0
    assert "model: attention, distill, graphsage, graphsage_large, popularity" in run.stdout


@pytest.mark.distributed
def test_ddp_sim_matches_single_process(tmp_path):
    """Two gloo processes through the real command line: same test metrics as one process.

    13 users, an odd number, so the two processes evaluate different counts.
    """
    data = write_tiny_ml100k(tmp_path / "odd", num_users=13)
    common = [f"data.path={data}", f"output_dir={tmp_path / 'runs'}", "model.embedding_dim=8",
              "data.batch_size=16", "data.eval_batch_size=2", "trainer.max_epochs=2",
              "trainer.enable_progress_bar=false"]
    ddp = _run_cli("train.py", *common, "trainer=ddp_sim", "run_name=ddp")
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert "global batch 16 = 2 process(es) x 1 accumulation step(s) x 8 per process" in ddp.stderr
    run_dir = tmp_path / "runs" / "ddp"
    assert len(list((run_dir / "wandb").glob("offline-run-*"))) == 1
    trained = json.loads((run_dir / "metrics.json").read_text())
    assert trained["test"]["test/users"] == 13

    single = _run_cli("evaluate.py", f"ckpt_path={run_dir / 'checkpoints' / 'best.ckpt'}")
    assert single.returncode == 0, single.stderr[-3000:]
    evaluated = json.loads((run_dir / "evaluation.json").read_text())["test"]
    for name, value in trained["test"].items():
        assert evaluated[name] == pytest.approx(value, abs=1e-6), name


def test_failed_checkpoint_write_keeps_last(tiny_overrides, tmp_path):
    from lightning_divrec.training.checkpoint_io import AtomicCheckpointIO

    metrics = train(load_train_config(tiny_overrides + ["run_name=atomic"]))
    last = tmp_path / "runs" / "atomic" / "checkpoints" / "last.ckpt"
    before = last.read_bytes()
    # A lambda cannot be pickled, so torch.save fails part-way through the write.
    with pytest.raises(Exception):
        AtomicCheckpointIO().save_checkpoint({"state_dict": {}, "broken": lambda: None}, last)
    assert last.read_bytes() == before
    assert sorted(path.name for path in last.parent.iterdir()) == ["best.ckpt", "last.ckpt"]
    assert torch.load(last, map_location="cpu", weights_only=True)["epoch"] >= 1
    assert metrics["epochs_trained"] == 2


@pytest.mark.parametrize("rule, expected", [("none", 0.002), ("linear", 0.002 * 512 / 2048), ("sqrt", 0.002 * 0.5)])
def test_learning_rate_scaling_rule(rule, expected):
    from omegaconf import OmegaConf

    from lightning_divrec.models import GraphSAGEModule

    cfg = load_train_config(["data.batch_size=512", f"model.lr_scaling={rule}"])
    container = OmegaConf.to_container(cfg)
    model = GraphSAGEModule(3, 4, container["model"], [10], run_config=container)
    assert model.learning_rate() == pytest.approx(expected)
    assert model.configure_optimizers().param_groups[0]["lr"] == pytest.approx(expected)


def test_multinode_preset_composes():
    cfg = load_train_config(["trainer=multinode", "trainer.devices=8", "trainer.num_nodes=3"])
    assert cfg.trainer.strategy == "ddp"
    assert cfg.trainer.devices * cfg.trainer.num_nodes == 24
