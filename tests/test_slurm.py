"""Slurm: layout checks, template rendering and ``resume=auto`` without Slurm; real jobs on a local cluster.

The tests marked ``slurm`` submit the templates in ``slurm/`` to the one-node
cluster that ``.ci/slurm-cluster.sh`` starts (as root). Without a cluster they
are skipped, except when ``CI`` is set, where they fail.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lightning_divrec.config import ConfigError, load_evaluate_config, load_train_config
from lightning_divrec.slurm import default_template_dir, find_template, job_environment, main, render, submit
from lightning_divrec.train import train
from lightning_divrec.training.run_dir import write_text_atomic
from lightning_divrec.training.slurm_env import SlurmLayout, layout_from_env, layout_problems

from .conftest import write_tiny_ml100k

REPO = Path(__file__).resolve().parents[1]
TEMPLATES = sorted(path.stem for path in default_template_dir().glob("*.sbatch"))
TRAINING_TEMPLATES = [name for name in TEMPLATES if name != "evaluate"]


# ---------------------------------------------------------------- layout checks


@pytest.mark.parametrize(
    ("layout", "devices", "num_nodes", "accelerator", "expected"),
    [
        (SlurmLayout(nodes=1, ntasks_per_node=2, ntasks=2), 2, 1, "cpu", None),
        (SlurmLayout(nodes=2, ntasks_per_node=4, ntasks=8, gpus_per_node=4), 4, 2, "gpu", None),
        (SlurmLayout(nodes=1, ntasks_per_node=4, ntasks=4), 2, 1, "cpu", "--ntasks-per-node=4 but trainer.devices=2"),
        (SlurmLayout(nodes=2, ntasks_per_node=2, ntasks=4), 2, 1, "cpu", "--nodes=2 but trainer.num_nodes=1"),
        (SlurmLayout(ntasks=2), 2, 1, "cpu", "--ntasks=2 without --ntasks-per-node"),
        (SlurmLayout(nodes=1, ntasks_per_node=4, gpus_per_node=2), 4, 1, "gpu", "--gpus-per-node=2 is less than"),
        (SlurmLayout(nodes=1, ntasks_per_node=2, gpus_per_node=2), 2, 1, "cpu", "requests GPUs but trainer.accelerator=cpu"),
    ],
)
def test_layout_problems(layout, devices, num_nodes, accelerator, expected):
    problems = layout_problems(layout, devices, num_nodes, accelerator)
    if expected is None:
        assert problems == []
    else:
        assert len(problems) == 1, problems
        assert expected in problems[0]


def test_layout_from_env_reads_slurm_variables():
    env = {"SLURM_NTASKS": "6", "SLURM_NTASKS_PER_NODE": "3", "SLURM_JOB_NUM_NODES": "2",
           "SLURM_GPUS_PER_NODE": "a100:3", "SLURM_JOB_NAME": "divrec-train"}
    assert layout_from_env(env) == SlurmLayout(nodes=2, ntasks_per_node=3, ntasks=6, gpus_per_node=3)
    assert layout_from_env({}) is None
    assert layout_from_env(env | {"SLURM_JOB_NAME": "bash"}) is None


def test_train_rejects_task_mismatch(tiny_overrides, monkeypatch):
    for name, value in {"SLURM_NTASKS": "4", "SLURM_NTASKS_PER_NODE": "4", "SLURM_JOB_NUM_NODES": "1",
                        "SLURM_JOB_NAME": "divrec-train"}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match="--ntasks-per-node=4 but trainer.devices=1"):
        train(load_train_config(tiny_overrides))


# ---------------------------------------------------------------- rendering


def _directives(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        if line.startswith("#SBATCH --"):
            key, _, value = line[len("#SBATCH --"):].partition("=")
            values[key.split()[0]] = value.split()[0] if value else ""
    return values


def _srun_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.split()[:2] in (["exec", "srun"], ["srun"])]


@pytest.mark.parametrize("name", TEMPLATES)
def test_template_is_valid_bash_with_one_srun(name):
    text = find_template(name).read_text()
    check = subprocess.run(["bash", "-n"], input=text, capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    srun = _srun_lines(text)
    assert len(srun) == 1
    # exec: the batch script's exit status is srun's, so a failed run is not recorded as COMPLETED.
    assert srun[0].startswith("exec srun ")
    rendered = render(text, source=name)
    assert rendered.entry_point in srun[0]


@pytest.mark.parametrize("name", TRAINING_TEMPLATES)
def test_training_template_requeues_and_resumes(name):
    text = find_template(name).read_text()
    directives = _directives(text)
    assert directives["signal"].startswith("USR1@")
    assert "requeue" in directives
    assert "resume=auto" in text
    assert 'trainer.devices="${SLURM_NTASKS_PER_NODE}"' in text
    assert 'trainer.num_nodes="${SLURM_JOB_NUM_NODES}"' in text


def test_render_takes_layout_from_config():
    overrides = ["trainer=ddp_sim", "data.batch_size=64"]
    rendered = render(find_template("train").read_text(), overrides, ["cpus-per-task=1"])
    trainer = load_train_config(overrides).trainer
    directives = _directives(rendered.text)
    assert directives["ntasks-per-node"] == str(trainer.devices)
    assert directives["nodes"] == str(trainer.num_nodes)
    assert directives["cpus-per-task"] == "1"
    # A CPU trainer requests no GPUs.
    assert "gpus-per-node" not in directives
    srun = _srun_lines(rendered.text)
    assert len(srun) == 1
    assert rendered.text.rstrip().endswith('trainer=ddp_sim data.batch_size=64 "$@"')


def test_render_multinode_gpu_layout():
    overrides = ["trainer.num_nodes=3", "trainer.devices=8"]
    rendered = render(find_template("train_multinode").read_text(), overrides)
    directives = _directives(rendered.text)
    assert directives["nodes"] == "3"
    assert directives["ntasks-per-node"] == "8"
    assert directives["gpus-per-node"] == "8"
    assert rendered.layout == SlurmLayout(nodes=3, ntasks_per_node=8, ntasks=24, gpus_per_node=8)


def test_render_evaluate_uses_one_task():
    overrides = ["ckpt_path=runs/x/checkpoints/best.ckpt"]
    rendered = render(find_template("evaluate").read_text(), overrides)
    directives = _directives(rendered.text)
    assert directives["ntasks-per-node"] == str(load_evaluate_config(["accelerator=gpu", *overrides]).devices)
    assert directives["gpus-per-node"] == directives["ntasks-per-node"]
    assert rendered.entry_point == "divrec-evaluate"


def test_render_gres_replaces_gpus_per_node():
    rendered = render(find_template("train").read_text(), ["trainer.devices=2"], ["gres=gpu:a100:2"])
    directives = _directives(rendered.text)
    assert "gpus-per-node" not in directives
    assert rendered.layout.gpus_per_node == 2


def test_job_environment_drops_wandb_service(monkeypatch):
    monkeypatch.setenv("WANDB_SERVICE", "2-1234-tcp-localhost-5678")
    monkeypatch.setenv("DIVREC_MARKER", "kept")
    environment = job_environment()
    assert "WANDB_SERVICE" not in environment
    assert environment["DIVREC_MARKER"] == "kept"


@pytest.mark.parametrize(
    ("sbatch_options", "gpus_per_node", "expected"),
    [
        (["ntasks-per-node=3"], None, "--ntasks-per-node=3 but trainer.devices=2"),
        (["nodes=2"], None, "--nodes=2 but trainer.num_nodes=1"),
        ([], 1, "--gpus-per-node=1 is less than trainer.devices=2"),
        (["gres=gpu:1"], None, "--gpus-per-node=1 is less than trainer.devices=2"),
    ],
)
def test_render_rejects_inconsistent_layout(sbatch_options, gpus_per_node, expected):
    with pytest.raises(ConfigError, match=expected):
        render(find_template("train").read_text(), ["trainer.devices=2"], sbatch_options, gpus_per_node=gpus_per_node)


def test_cli_dry_run_prints_script(capsys):
    assert main(["--template", "train", "--dry-run", "trainer=ddp_sim"]) == 0
    output = capsys.readouterr().out
    assert output.startswith("#!/bin/bash")
    assert "#SBATCH --ntasks-per-node=2" in output


def test_cli_reports_mismatch_and_bad_input(capsys):
    assert main(["--template", "train", "--dry-run", "--sbatch", "ntasks-per-node=4", "trainer=ddp_sim"]) == 2
    assert "--ntasks-per-node=4 but trainer.devices=2" in capsys.readouterr().err
    assert main(["--template", "no-such-template", "--dry-run"]) == 2
    assert "sbatch template 'no-such-template' not found" in capsys.readouterr().err
    assert main(["--template", "train", "--dry-run", "--sbatch", "-p gpu"]) == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err
    assert main(["--template", "train", "--dry-run", "trainer.devicez=2"]) == 2
    assert "trainer.devicez" in capsys.readouterr().err


def test_cli_writes_script_atomically(tmp_path, capsys):
    script = tmp_path / "job.sbatch"
    assert main(["--template", "train", "--dry-run", "--output", str(script), "trainer=ddp_sim"]) == 0
    assert _directives(script.read_text())["ntasks-per-node"] == "2"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["job.sbatch"]


# ---------------------------------------------------------------- resume=auto without Slurm


def test_resume_auto_starts_then_resumes(tiny_ml100k, tmp_path, monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    common = [
        f"data.path={tiny_ml100k}", f"output_dir={tmp_path / 'runs'}", "run_name=auto", "model.embedding_dim=8",
        "data.batch_size=32", "trainer.enable_progress_bar=false", "trainer.early_stopping_patience=null",
        "resume=auto",
    ]
    run_dir = tmp_path / "runs" / "auto"
    # An earlier attempt that stopped before its first checkpoint left its W&B id behind.
    write_text_atomic(run_dir / "wandb_run_id", "abcd1234\n")

    first = train(load_train_config(common + ["trainer.max_epochs=1"]))
    assert first["epochs_trained"] == 1
    assert not list((run_dir / "csv").glob("resumed-*"))
    second = train(load_train_config(common + ["trainer.max_epochs=2"]))
    assert second["epochs_trained"] == 2
    assert len(list((run_dir / "csv").glob("resumed-*/metrics.csv"))) == 1
    assert (run_dir / "wandb_run_id").read_text().strip() == "abcd1234"
    offline_runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 2
    # wandb appends "-1" to the folder name when both parts start in the same second.
    assert all("-abcd1234" in path.name for path in offline_runs)


def test_resume_auto_needs_run_name_outside_slurm(tiny_overrides, monkeypatch):
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.delenv("SLURM_ARRAY_JOB_ID", raising=False)
    with pytest.raises(ValueError, match="resume=auto needs run_name"):
        train(load_train_config(tiny_overrides + ["resume=auto"]))


# ---------------------------------------------------------------- real jobs on a local Slurm


def _cluster_problem() -> str | None:
    if shutil.which("sbatch") is None:
        return "sbatch not found"
    result = subprocess.run(["sinfo", "--noheader", "--format=%T"], capture_output=True, text=True, timeout=30)
    states = result.stdout.split()
    if result.returncode != 0 or not any(state.startswith(("idle", "mix", "alloc")) for state in states):
        return f"no usable Slurm node (sinfo exit status {result.returncode}: {result.stdout.strip()} {result.stderr.strip()})"
    return None


@pytest.fixture
def slurm_cluster(monkeypatch):
    """Require a running local cluster; make the job find this checkout's package and entry points."""
    problem = _cluster_problem()
    if problem:
        message = f"{problem}; start a local cluster with `sudo bash .ci/slurm-cluster.sh`"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    # sbatch passes this environment to the job.
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")


def _submit(tmp_path: Path, overrides: list[str]) -> str:
    rendered = render(
        find_template("train").read_text(), ["trainer=ddp_sim", *overrides],
        ["cpus-per-task=1", "time=00:15:00", f"output={tmp_path}/slurm-%j.out", f"chdir={tmp_path}"],
    )
    script = tmp_path / "job.sbatch"
    write_text_atomic(script, rendered.text)
    return submit(script)


def _job_field(job_id: str, name: str) -> str:
    result = subprocess.run(["scontrol", "show", "job", "--oneliner", job_id], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    for word in result.stdout.split():
        key, _, value = word.partition("=")
        if key == name:
            return value
    raise AssertionError(f"scontrol show job {job_id} has no {name}: {result.stdout}")


def _wait_for(job_id: str, states: set[str], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = _job_field(job_id, "JobState")
        if state in states:
            return state
        if state in {"FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL"}:
            return state
        time.sleep(1)
    subprocess.run(["scancel", job_id], timeout=30)
    raise AssertionError(f"job {job_id} not in {states} after {timeout} s (last state {state})")


def _job_output(tmp_path: Path, job_id: str) -> str:
    path = tmp_path / f"slurm-{job_id}.out"
    return path.read_text(errors="replace") if path.is_file() else "(no job output)"


def _epochs(csv_path: Path, column: str) -> set[int]:
    with csv_path.open() as handle:
        return {int(row["epoch"]) for row in csv.DictReader(handle) if row.get(column)}


@pytest.mark.slurm
def test_template_ddp_job_completes(slurm_cluster, tmp_path):
    data = write_tiny_ml100k(tmp_path / "data")
    job_id = _submit(tmp_path, [
        f"data.path={data}", f"output_dir={tmp_path / 'runs'}", "data.batch_size=32", "data.eval_batch_size=5",
        "model.embedding_dim=8", "trainer.max_epochs=2", "trainer.enable_progress_bar=false",
    ])
    state = _wait_for(job_id, {"COMPLETED"}, timeout=300)
    output = _job_output(tmp_path, job_id)
    assert state == "COMPLETED", output[-3000:]
    assert _job_field(job_id, "ExitCode") == "0:0"
    assert "global batch 32 = 2 process(es)" in output

    run_dirs = list((tmp_path / "runs").iterdir())
    assert [path.name for path in run_dirs] == [f"graphsage-ml-100k-slurm{job_id}"]
    run_dir = run_dirs[0]
    assert (run_dir / "metrics.json").is_file()
    offline_runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 1
    assert offline_runs[0].name.endswith((run_dir / "wandb_run_id").read_text().strip())


@pytest.mark.slurm
def test_failing_job_is_recorded_failed(slurm_cluster, tmp_path):
    # The data path does not exist, so divrec-train exits with status 2 on every rank.
    job_id = _submit(tmp_path, [f"data.path={tmp_path / 'missing'}", f"output_dir={tmp_path / 'runs'}"])
    state = _wait_for(job_id, {"COMPLETED"}, timeout=180)
    assert state == "FAILED", _job_output(tmp_path, job_id)[-3000:]


@pytest.mark.slurm
@pytest.mark.parametrize("trigger", ["scontrol", "signal"])
def test_requeue_resumes_from_checkpoint(slurm_cluster, tmp_path, trigger):
    """Requeue the job after its first checkpoint; it resumes into the same W&B run and loses no epoch.

    ``scontrol``: the test requeues the job, as an operator or a preemption
    would. ``signal``: the test sends SIGUSR1, the warning that ``--signal``
    gives before the time limit, and rank zero requeues the job itself.
    """
    max_epochs = 4
    # 400 users give epochs of a few seconds, long enough to requeue the job between two checkpoints.
    data = write_tiny_ml100k(tmp_path / "data", num_users=400, num_items=300)
    job_id = _submit(tmp_path, [
        f"data.path={data}", f"output_dir={tmp_path / 'runs'}", "data.batch_size=32", "model.embedding_dim=8",
        f"trainer.max_epochs={max_epochs}", "trainer.early_stopping_patience=null", "trainer.enable_progress_bar=false",
    ])
    run_dir = tmp_path / "runs" / f"graphsage-ml-100k-slurm{job_id}"
    last = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 240
    while not last.is_file():
        assert time.monotonic() < deadline, _job_output(tmp_path, job_id)[-3000:]
        assert _job_field(job_id, "JobState") in {"PENDING", "RUNNING"}, _job_output(tmp_path, job_id)[-3000:]
        time.sleep(0.5)
    wandb_id = (run_dir / "wandb_run_id").read_text().strip()

    if trigger == "scontrol":
        requeue = subprocess.run(["scontrol", "requeue", job_id], capture_output=True, text=True, timeout=30)
    else:
        requeue = subprocess.run(["scancel", "--signal=USR1", job_id], capture_output=True, text=True, timeout=30)
    assert requeue.returncode == 0, requeue.stderr
    # Slurm holds a requeued job (reason BeginTime) for about two minutes; release it now.
    assert _wait_for(job_id, {"PENDING"}, timeout=120) == "PENDING"
    subprocess.run(["scontrol", "update", f"JobId={job_id}", "StartTime=now"], check=True, timeout=30)

    state = _wait_for(job_id, {"COMPLETED"}, timeout=300)
    output = _job_output(tmp_path, job_id)
    assert state == "COMPLETED", output[-3000:]
    assert _job_field(job_id, "Restarts") == "1"
    assert "resume=auto: continuing" in output
    if trigger == "signal":
        assert f"requeueing Slurm job {job_id}" in output

    # The first attempt's validated epochs, then the resumed attempt's trained epochs.
    validated_first = _epochs(run_dir / "csv" / "metrics.csv", "val/ndcg@10")
    resumed_csv = list((run_dir / "csv").glob("resumed-*/metrics.csv"))
    assert len(resumed_csv) == 1
    trained_after = _epochs(resumed_csv[0], "train/loss_epoch")
    resumed_from = min(trained_after)
    assert resumed_from >= 1, "the requeued job trained from scratch instead of resuming"
    assert set(range(resumed_from)) <= validated_first, "an epoch completed before the requeue is missing"
    assert trained_after == set(range(resumed_from, max_epochs))

    assert (run_dir / "wandb_run_id").read_text().strip() == wandb_id
    offline_runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(offline_runs) == 2
    assert all(f"-{wandb_id}" in path.name for path in offline_runs)
    assert not list(run_dir.glob("hpc_ckpt_*.ckpt"))
