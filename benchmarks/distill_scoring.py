"""Time full-catalogue scoring of a teacher checkpoint against student checkpoints.

    flock /work/timing.lock python benchmarks/distill_scoring.py \\
        --teacher runs/teacher-sage128/checkpoints/best.ckpt \\
        --student runs/kd-mf8-rd1/checkpoints/best.ckpt --student runs/mf8-nokd/checkpoints/best.ckpt \\
        --threads 1 --repeats 50 --output runs/distill_scoring.json

Every model scores every item for all test users of the checkpoints' data,
in batches of ``--batch-size`` users, with ``time_scoring`` from
``lightning_divrec.models.distill_report``. Two times are reported per model,
each the best of ``--repeats`` passes:

* ``pass_seconds``: one whole pass, counting the model's own preparation
  (``prepare_scoring``: GraphSAGE's propagation over the training graph, and
  for matrix factorisation only the lookup of its embedding tables) and the
  score matrix of every batch;
* ``batch_seconds``: the score matrix of one batch alone, averaged over the
  batches of a pass.

Both models run with the same number of torch threads (``--threads``). On a
machine that other jobs share, one thread is less exposed to them: a kernel
split over several threads finishes only when its slowest thread does.

Not counted: loading the checkpoint and the data, masking training items,
top-K selection and metrics, which cost the same for every model. A
distillation checkpoint is timed through its student, so the teacher is not
needed. The checkpoints must share one data fingerprint.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lightning_divrec.config import DataConfig, validate_config  # noqa: E402
from lightning_divrec.data import RecDataModule  # noqa: E402
from lightning_divrec.models import MODELS, DistillationModule  # noqa: E402
from lightning_divrec.models.distill_report import time_scoring  # noqa: E402
from lightning_divrec.models.teacher import count_parameters  # noqa: E402
from lightning_divrec.training.run_dir import write_json_atomic  # noqa: E402

log = logging.getLogger("distill_scoring")


def read_checkpoint_header(path: Path) -> tuple[str, dict, str]:
    """Return the model name, run config and data fingerprint stored in a ``train`` checkpoint."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file; pass runs/<run>/checkpoints/best.ckpt of a finished run")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    try:
        return payload["divrec"]["model"], payload["hyper_parameters"]["run_config"], payload["divrec"]["data_fingerprint"]
    except (KeyError, TypeError) as error:
        raise ValueError(f"{path} was not written by lightning_divrec's train (missing {error})") from error


def load_scorer(path: Path, datamodule: RecDataModule) -> tuple[torch.nn.Module, str]:
    """Load the checkpoint at ``path`` and return the module that scores (a distillation run's student) and its name."""
    name, _, fingerprint = read_checkpoint_header(path)
    if fingerprint != datamodule.fingerprint():
        raise ValueError(
            f"{path} was trained on other data or another split than the teacher checkpoint "
            f"(fingerprint {fingerprint[:12]} vs {datamodule.fingerprint()[:12]}); compare runs on the same data.* settings"
        )
    model = MODELS[name].load_from_checkpoint(path, map_location="cpu", weights_only=True)
    scorer = model.student if isinstance(model, DistillationModule) else model
    scorer.attach_data(datamodule)
    scorer.eval()
    return scorer, name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", type=Path, required=True, help="checkpoint of the teacher run")
    parser.add_argument("--student", type=Path, action="append", required=True, help="checkpoint of a student run; repeat for several")
    parser.add_argument("--batch-size", type=int, default=256, help="users per score matrix")
    parser.add_argument("--repeats", type=int, default=20, help="passes per model; the best is kept")
    parser.add_argument("--output", type=Path, default=None, help="JSON file to write (atomically); stdout only when omitted")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads for both models; torch's default when omitted")
    args = parser.parse_args()
    if args.threads is not None:
        if args.threads < 1:
            parser.error(f"--threads={args.threads} must be at least 1")
        torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    _, run_config, _ = read_checkpoint_header(args.teacher)
    data_config = validate_config(dict(run_config["data"]), DataConfig, f"data configuration stored in {args.teacher}")
    datamodule = RecDataModule(data_config, seed=run_config["seed"])
    datamodule.prepare_data()
    datamodule.setup("test")
    users = torch.from_numpy(datamodule.stages["test"].users)

    load_before = os.getloadavg()
    teacher, teacher_name = load_scorer(args.teacher, datamodule)
    teacher_time = time_scoring(teacher, users, args.batch_size, repeats=args.repeats)
    record = {
        "teacher": {"checkpoint": str(args.teacher), "model": teacher_name, "params": count_parameters(teacher), **teacher_time},
        "students": [],
        "items": datamodule.num_items,
        "threads": torch.get_num_threads(),
        "repeats": args.repeats,
    }
    for path in args.student:
        student, student_name = load_scorer(path, datamodule)
        student_time = time_scoring(student, users, args.batch_size, repeats=args.repeats)
        params = count_parameters(student)
        record["students"].append({
            "checkpoint": str(path),
            "model": student_name,
            "params": params,
            "param_ratio": params / record["teacher"]["params"],
            **student_time,
            "pass_speedup": teacher_time["pass_seconds"] / student_time["pass_seconds"],
            "batch_speedup": teacher_time["batch_seconds"] / student_time["batch_seconds"],
        })
    record["load_average_before"] = list(load_before)
    record["load_average_after"] = list(os.getloadavg())

    text = json.dumps(record, indent=2)
    sys.stdout.write(text + "\n")
    if args.output is not None:
        write_json_atomic(args.output, record)
        log.info("wrote %s", args.output)


if __name__ == "__main__":
    main()
