"""Train and evaluate one RecBole 1.2.1 model, or write RecBole's own 8:1:1 split.

Runs only in the environment that ``benchmarks/recbole/setup_env.sh`` creates,
never in the project's own environment:

    benchmarks/recbole/.venv/bin/python benchmarks/recbole/run_recbole.py train \
        --model BPR --data-dir runs/recbole_bench/data --output runs/recbole_bench/BPR
    benchmarks/recbole/.venv/bin/python benchmarks/recbole/run_recbole.py split \
        --data-dir runs/recbole_bench/data --seed 2020 --output runs/recbole_bench/recbole_split

``train`` reads ``<data-dir>/ml-100k-divrec/ml-100k-divrec.{train,valid,test}.inter`` through
RecBole's ``benchmark_filename``, so RecBole trains on the split that our side
exported. It writes ``<output>/result.json`` with RecBole's own test metrics,
epoch and evaluation times and peak RSS. It also writes
``<output>/test_scores.npz``, the raw scores [U_test, I] of every test user for
every item with the original user and item ids, which our metric suite scores.

``split`` loads ``<data-dir>/ml-100k-divrec/ml-100k-divrec.inter`` with RecBole's random
8:1:1 split per user (``--protocol loo``: its leave-one-out by time) and writes
the three parts as ``user<TAB>item`` files.

RecBole bugs met on this machine are patched here, inside this process, and
never in site-packages; ``apply_patches`` lists them with their reasons.
"""

from __future__ import annotations

import os

# RecBole reloads its own best checkpoint with torch.load, and the checkpoint
# contains non-tensor objects (its Config). torch 2.6 and later load with
# weights_only=True by default and reject them. This variable restores the
# old default for this process only, and must be set before torch is imported.
os.environ.setdefault("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

log = logging.getLogger("run_recbole")

DATASET = "ml-100k-divrec"
"""Dataset name of the exported files. RecBole 1.2.1 ignores ``data_path`` for the name
``ml-100k`` and reads the copy in its wheel, so the export uses another name."""

PATCHES = {
    "Collector.get_data_struct": (
        "RecBole 1.2.1 calls .cpu() on every collected value, but data.num_items is a plain int, so "
        "ItemCoverage and GiniIndex fail with \"'int' object has no attribute 'cpu'\"; the patch moves "
        "only tensors to the CPU."
    ),
}


LOO_EVAL_ARGS = {"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user", "mode": "full"}
"""RecBole's leave-one-out by time: each user's last interaction for test, the one before for validation."""


def apply_patches() -> None:
    """Replace the RecBole functions listed in ``PATCHES`` inside this process."""
    import copy

    from recbole.evaluator.collector import Collector

    def get_data_struct(self):
        for key, value in self.data_struct._data_dict.items():
            if isinstance(value, torch.Tensor):
                self.data_struct._data_dict[key] = value.cpu()
        returned = copy.deepcopy(self.data_struct)
        for key in ["rec.topk", "rec.meanrank", "rec.score", "rec.items", "data.label"]:
            if key in self.data_struct:
                del self.data_struct[key]
        return returned

    Collector.get_data_struct = get_data_struct


def base_config(args, work_dir: Path) -> dict:
    """Return the RecBole settings shared by training and the split check."""
    return {
        "data_path": str(Path(args.data_dir).resolve()),
        "dataset": DATASET,
        "load_col": {"inter": ["user_id", "item_id", "rating", "timestamp"]},
        "seed": args.seed,
        "reproducibility": True,
        "device": "cpu",
        "use_gpu": False,
        "show_progress": False,
        "checkpoint_dir": str(work_dir),
        "log_wandb": False,
        "state": "WARNING",
        "eval_args": {"split": {"RS": [0.8, 0.1, 0.1]}, "order": "RO", "group_by": "user", "mode": "full"},
    }


def peak_rss_mib() -> float:
    """Return this process's peak resident set size in MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_json_atomic(path: Path, payload: dict) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(payload, indent=2) + "\n")
    temporary.replace(path)


def run_split(args) -> None:
    """Write RecBole's own random 8:1:1 split of the whole ``.inter`` file as three ``user<TAB>item`` files."""
    from recbole.config import Config
    from recbole.data import create_dataset
    from recbole.utils import init_seed

    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        config_dict = base_config(args, Path(scratch))
        if args.protocol == "loo":
            config_dict["eval_args"] = LOO_EVAL_ARGS
        config = Config(model="BPR", dataset=DATASET, config_dict=config_dict)
        # The same order of calls as recbole.quick_start.run_recbole: seed, load, split.
        init_seed(config["seed"], config["reproducibility"])
        dataset = create_dataset(config)
        parts = dataset.build()
    for name, part in zip(("train", "valid", "test"), parts):
        users = part.id2token("user_id", part.inter_feat["user_id"].numpy())
        items = part.id2token("item_id", part.inter_feat["item_id"].numpy())
        lines = "".join(f"{user}\t{item}\n" for user, item in zip(users, items))
        target = output / f"{name}.tsv"
        temporary = target.with_name(target.name + ".tmp")
        temporary.write_text(lines)
        temporary.replace(target)
        log.info("RecBole %s part: %d interactions", name, len(part.inter_feat))


def model_config(args) -> dict:
    """Return the hyperparameters of ``args.model`` and of ``args.protocol`` that differ from RecBole's defaults."""
    settings = {
        "epochs": args.epochs,
        "stopping_step": args.stopping_step,
        "eval_step": 1,
        "train_batch_size": args.train_batch_size,
        "eval_batch_size": args.eval_batch_size,
        "learning_rate": args.learning_rate,
        "embedding_size": args.embedding_size,
        "metrics": ["Recall", "NDCG", "Hit", "ItemCoverage", "GiniIndex", "ShannonEntropy"],
        "topk": [10],
        "valid_metric": "NDCG@10",
    }
    if args.protocol == "ratio":
        settings["benchmark_filename"] = ["train", "valid", "test"]
    else:
        # Leave-one-out by time on the whole file: RecBole's own split.
        settings["eval_args"] = LOO_EVAL_ARGS
    if args.model == "LightGCN":
        settings["n_layers"] = args.layers
    if args.model == "SASRec":
        settings["hidden_size"] = args.embedding_size
        settings["loss_type"] = "CE"
        settings["train_neg_sample_args"] = None
        settings["MAX_ITEM_LIST_LENGTH"] = 50
        del settings["embedding_size"]
    return settings


def time_methods(trainer) -> dict[str, list[float]]:
    """Wrap the trainer's epoch methods so that each call's wall time is recorded."""
    seconds: dict[str, list[float]] = {"train_epoch": [], "valid_epoch": []}

    def timed(method, key):
        def wrapper(*positional, **keywords):
            began = time.perf_counter()
            result = method(*positional, **keywords)
            seconds[key].append(time.perf_counter() - began)
            return result

        return wrapper

    trainer._train_epoch = timed(trainer._train_epoch, "train_epoch")
    trainer._valid_epoch = timed(trainer._valid_epoch, "valid_epoch")
    return seconds


@torch.no_grad()
def test_scores(model, test_data, batch_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (user ids [U_test], item ids [I], raw scores [U_test, I]) of every test user.

    Scores are the model's ``full_sort_predict`` before any history masking;
    RecBole's padding item 0 is dropped.
    """
    from recbole.data.interaction import Interaction

    dataset = test_data.dataset
    users = np.unique(dataset.inter_feat["user_id"].numpy())
    model.eval()
    rows = []
    for start in range(0, len(users), batch_size):
        batch = torch.from_numpy(users[start : start + batch_size])
        scores = model.full_sort_predict(Interaction({"user_id": batch}))
        rows.append(scores.view(len(batch), -1)[:, 1:].float().numpy())  # [B, I], padding dropped
    user_ids = dataset.id2token("user_id", users)
    item_ids = dataset.id2token("item_id", np.arange(1, dataset.item_num))
    return user_ids.astype(str), item_ids.astype(str), np.concatenate(rows)


def run_train(args) -> None:
    """Train ``args.model`` on the exported split, evaluate its best epoch, and write the results."""
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_seed

    began_total = time.perf_counter()
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        config_dict = base_config(args, Path(scratch)) | model_config(args)
        config = Config(model=args.model, dataset=DATASET, config_dict=config_dict)
        init_seed(config["seed"], config["reproducibility"])
        if args.threads is not None:
            torch.set_num_threads(args.threads)
        dataset = create_dataset(config)
        train_data, valid_data, test_data = data_preparation(config, dataset)
        init_seed(config["seed"] + config["local_rank"], config["reproducibility"])
        model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
        trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
        seconds = time_methods(trainer)

        if args.time_budget is not None:
            stop_after_budget(trainer, args.time_budget)
        began_fit = time.perf_counter()
        try:
            trainer.fit(train_data, valid_data, saved=True, show_progress=False)
        except BudgetSpent:
            log.info("%s: training budget of %.0f s spent", args.model, args.time_budget)
        fit_seconds = time.perf_counter() - began_fit
        best_valid = trainer.best_valid_result
        test_result = trainer.evaluate(test_data, load_best_model=True, show_progress=False)
        # The best weights are loaded now; time one more full test evaluation on its own.
        began_eval = time.perf_counter()
        trainer.evaluate(test_data, load_best_model=False, show_progress=False)
        eval_seconds = time.perf_counter() - began_eval
        if args.protocol == "ratio":
            # NOTE: sequential models score from item sequences, not user ids, so
            # their raw scores are not written and only RecBole's own metrics exist.
            user_ids, item_ids, scores = test_scores(model, test_data, 256)
            np.savez(output / "test_scores.tmp.npz", users=user_ids, items=item_ids, scores=scores)
            (output / "test_scores.tmp.npz").replace(output / "test_scores.npz")
    train_epochs = seconds["train_epoch"]
    result = {
        "model": args.model,
        "recbole_test": {key: float(value) for key, value in test_result.items()},
        "recbole_valid_best": {key: float(value) for key, value in best_valid.items()},
        "epochs_trained": len(train_epochs),
        "best_epoch": len(train_epochs) - trainer.cur_step,
        "seconds_per_train_epoch": float(np.median(train_epochs)) if train_epochs else None,
        "seconds_per_valid_epoch": float(np.median(seconds["valid_epoch"])) if seconds["valid_epoch"] else None,
        "seconds_fit": fit_seconds,
        "seconds_full_test_evaluation": eval_seconds,
        "seconds_total": time.perf_counter() - began_total,
        "peak_rss_mib": peak_rss_mib(),
        "parameters": sum(parameter.numel() for parameter in model.parameters()),
        "protocol": args.protocol,
        "time_budget_seconds": args.time_budget,
        "config": {key: config[key] for key in model_config(args) if key not in ("benchmark_filename", "eval_args")},
        "patches": PATCHES,
        "versions": versions(),
        "threads": torch.get_num_threads(),
    }
    write_json_atomic(output / "result.json", result)
    log.info("%s: test %s, %d epochs", args.model, result["recbole_test"], len(train_epochs))


class BudgetSpent(Exception):
    """Raised at the start of an epoch once the training time budget is spent."""


def stop_after_budget(trainer, seconds: float) -> None:
    """Make ``trainer.fit`` raise ``BudgetSpent`` before the first epoch that starts after ``seconds`` of training.

    The epoch before it has been validated, so RecBole's saved best model is complete.
    """
    original = trainer._train_epoch
    spent = {"seconds": 0.0}

    def limited(*positional, **keywords):
        if spent["seconds"] >= seconds:
            raise BudgetSpent
        began = time.perf_counter()
        result = original(*positional, **keywords)
        spent["seconds"] += time.perf_counter() - began
        return result

    trainer._train_epoch = limited


def versions() -> dict[str, str]:
    import numpy
    import pandas
    import recbole
    import scipy

    return {
        "python": sys.version.split()[0],
        "recbole": recbole.__version__,
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "pandas": pandas.__version__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["train", "split"])
    parser.add_argument("--data-dir", required=True, help=f"folder that contains {DATASET}/")
    parser.add_argument("--output", required=True, help="folder for result.json and test_scores.npz")
    parser.add_argument("--model", default="BPR", help="RecBole model class name: BPR, LightGCN, SASRec")
    parser.add_argument(
        "--protocol", default="ratio", choices=["ratio", "loo"],
        help="ratio: the exported 8:1:1 part files; loo: RecBole's leave-one-out by time on the whole file",
    )
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument("--epochs", type=int, default=300, help="maximum training epochs")
    parser.add_argument("--stopping-step", type=int, default=10, help="early stopping patience in epochs")
    parser.add_argument(
        "--time-budget", type=float, default=None,
        help="stop before the first epoch that would start after this many seconds of training (validation excluded)",
    )
    parser.add_argument("--train-batch-size", type=int, default=2048)
    parser.add_argument(
        "--eval-batch-size", type=int, default=256 * 1683,
        help="user-item pairs per evaluation batch; RecBole's full ranking divides it by the item count, "
        "so the default gives 256 users, the batch of our side (RecBole's own default 4096 gives 2)",
    )
    parser.add_argument("--learning-rate", type=float, default=0.001)
    parser.add_argument("--embedding-size", type=int, default=64)
    parser.add_argument("--layers", type=int, default=2, help="LightGCN propagation layers")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    args = parser.parse_args()

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args.data_dir = str(Path(args.data_dir).resolve())
    args.output = str(Path(args.output).resolve())
    Path(args.output).mkdir(parents=True, exist_ok=True)
    # RecBole writes log/ and log_tensorboard/ into the working directory.
    os.chdir(args.output)
    apply_patches()
    if args.command == "split":
        run_split(args)
    else:
        run_train(args)


if __name__ == "__main__":
    main()
