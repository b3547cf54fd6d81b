"""Train one lightning_divrec model with timings, or score RecBole's rankings with our metric suite.

Runs in the project's own environment, one model per process so that the
peak resident set size belongs to that model alone:

    python benchmarks/recbole/run_ours.py train --model graphsage --output runs/recbole_bench/ours-graphsage
    python benchmarks/recbole/run_ours.py score --scores runs/recbole_bench/BPR/test_scores.npz \
        --output runs/recbole_bench/BPR

``train`` runs ``lightning_divrec.train.train`` under RecBole's protocol
(``data.split=random_811``, validation items masked at test) and writes
``result.json``: test metrics, training and validation time per epoch, the time
of the final full test evaluation with the whole metric suite, total time, peak
RSS, and the scoring throughput of the trained model against a bare matrix
product. ``score`` reads the raw test scores [U_test, I] that
``run_recbole.py`` wrote, removes each user's training and validation items
exactly as our evaluation does, and writes ``our_suite.json`` with every metric
of our suite.
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from lightning_divrec.config.loading import load_train_config  # noqa: E402
from lightning_divrec.data import RecDataModule  # noqa: E402
from lightning_divrec.metrics import RankingMetricSuite  # noqa: E402
from lightning_divrec.models import MODELS  # noqa: E402
from lightning_divrec.train import train  # noqa: E402

log = logging.getLogger("run_ours")

OUR_MODELS = {
    "graphsage": [],
    "bpr-mf": [
        "model.num_layers=0", "model.dropout=0", "model.lr=0.001", "model.embedding_init=xavier_normal",
        "trainer.max_epochs=150",
    ],
    "popularity": ["model=popularity"],
    "attention": ["model=attention", "data.batch_size=128"],
}
"""Overrides of each model on top of ``configs/train.yaml``."""

PROTOCOL = ["data.split=random_811", "data.mask_valid_at_test=true", "logger=csv", "trainer.enable_progress_bar=false"]
"""RecBole's 8:1:1 protocol: random order, split per user, validation items masked at test."""

LOO_PROTOCOL = ["data.split=loo", "data.mask_valid_at_test=true", "logger=csv", "trainer.enable_progress_bar=false"]
"""Leave-one-out by time, each user's last item for test and the one before for validation, both masked at test."""


def peak_rss_mib() -> float:
    """Return this process's peak resident set size in MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_json_atomic(path: Path, payload: dict) -> None:
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(payload, indent=2) + "\n")
    temporary.replace(path)


class EpochTimes:
    """Wall times of the epochs of one run, filled in by the hooks of ``timed_class``."""

    def __init__(self, train_budget: float | None = None):
        self.train: list[float] = []
        self.val: list[float] = []
        self.test: list[float] = []
        self.started: dict[str, float] = {}
        self.training = False
        self.train_budget = train_budget
        """Seconds of training after which the run stops at the end of an epoch; None for no limit."""
        self.model = None


def timed_class(base: type, times: EpochTimes) -> type:
    """Return a subclass of the model class ``base`` whose epoch hooks record wall times in ``times``.

    Lightning calls ``on_train_epoch_end`` after the epoch's validation, so a
    training epoch ends at the start of its validation when there is one.
    """

    class Timed(base):
        def __init__(self, *positional, **keywords):
            super().__init__(*positional, **keywords)
            times.model = self

        def _end_training_epoch(self):
            if times.training:
                times.train.append(time.perf_counter() - times.started["train"])
                times.training = False
                if times.train_budget is not None and sum(times.train) >= times.train_budget:
                    self.trainer.should_stop = True

        def on_train_epoch_start(self):
            times.started["train"] = time.perf_counter()
            times.training = True
            super().on_train_epoch_start()

        def on_train_epoch_end(self):
            super().on_train_epoch_end()
            self._end_training_epoch()

        def on_validation_epoch_start(self):
            self._end_training_epoch()
            times.started["val"] = time.perf_counter()
            super().on_validation_epoch_start()

        def on_validation_epoch_end(self):
            super().on_validation_epoch_end()
            times.val.append(time.perf_counter() - times.started["val"])

        def on_test_epoch_start(self):
            times.started["test"] = time.perf_counter()
            super().on_test_epoch_start()

        def on_test_epoch_end(self):
            super().on_test_epoch_end()
            times.test.append(time.perf_counter() - times.started["test"])

    Timed.__name__ = Timed.__qualname__ = base.__name__
    return Timed


@torch.no_grad()
def scoring_throughput(model, num_users: int, batch_size: int, repeats: int = 5) -> dict:
    """Time ``prepare_scoring`` plus ``score`` over every user against one bare product of the same embeddings.

    Both are the best of ``repeats`` runs. The bare product multiplies the
    cached user vectors [U, D] by the item vectors [D, I] in one call and is
    only available for models that cache embeddings (``model._cached``).
    """
    model.eval()
    users = torch.arange(num_users)
    score_seconds = []
    for _ in range(repeats):
        model.finish_scoring()
        began = time.perf_counter()
        model.prepare_scoring()
        for start in range(0, num_users, batch_size):
            model.score(users[start : start + batch_size])
        score_seconds.append(time.perf_counter() - began)
    result = {"users": num_users, "batch_size": batch_size, "seconds_score": min(score_seconds)}
    cached = getattr(model, "_cached", None)
    if cached is not None:
        user_vectors, item_vectors = cached
        product_seconds = []
        for _ in range(repeats):
            began = time.perf_counter()
            torch.mm(user_vectors, item_vectors.T)  # [U, D] @ [D, I] -> [U, I]
            product_seconds.append(time.perf_counter() - began)
        result["seconds_bare_product"] = min(product_seconds)
        result["score_speed_vs_bare_product"] = result["seconds_bare_product"] / result["seconds_score"]
    model.finish_scoring()
    return result


def run_train(args) -> None:
    """Train ``args.model`` under RecBole's protocol and write ``result.json``."""
    began = time.perf_counter()
    output = Path(args.output).resolve()
    output.mkdir(parents=True, exist_ok=True)
    overrides = (
        (LOO_PROTOCOL if args.protocol == "loo" else PROTOCOL)
        + OUR_MODELS[args.model]
        + [f"seed={args.seed}", f"data.split_seed={args.split_seed}", f"output_dir={output}", "run_name=run"]
        + list(args.override)
    )
    cfg = load_train_config(overrides)
    times = EpochTimes(args.train_budget)
    name = cfg.model.name
    original = MODELS[name]
    MODELS[name] = timed_class(original, times)
    try:
        metrics = train(cfg)
    finally:
        MODELS[name] = original
    total_seconds = time.perf_counter() - began

    datamodule_users = times.model.num_users
    throughput = scoring_throughput(times.model, datamodule_users, cfg.data.eval_batch_size)
    # Lightning runs one sanity-check validation pass before training, and
    # train() validates the best checkpoint again at the end; both are in `val`.
    result = {
        "model": args.model,
        "protocol": args.protocol,
        "overrides": overrides,
        "test": metrics["test"],
        "epochs_trained": len(times.train),
        "seconds_per_train_epoch": float(np.median(times.train)) if times.train else None,
        "seconds_per_valid_epoch": float(np.median(times.val)) if times.val else None,
        "seconds_full_test_evaluation": times.test[-1] if times.test else None,
        "seconds_total": total_seconds,
        "train_budget_seconds": args.train_budget,
        "peak_rss_mib": peak_rss_mib(),
        "parameters": sum(parameter.numel() for parameter in times.model.parameters()),
        "scoring": throughput,
        "threads": torch.get_num_threads(),
        "versions": metrics["versions"],
    }
    write_json_atomic(output / "result.json", result)
    log.info("%s: test ndcg@10 %.4f in %.1f s", args.model, metrics["test"]["test/ndcg@10"], total_seconds)


def score_with_suite(datamodule, user_ids, item_ids, scores: torch.Tensor, ks, source: str = "scores") -> dict:
    """Evaluate another framework's raw test scores with our suite and our test masking.

    Args:
        datamodule: a set-up ``RecDataModule``; its ``test`` stage gives users,
            targets and excluded items.
        user_ids: [U_s] original user id of each score row (strings or ints).
        item_ids: [I] original item id of each score column.
        scores: [U_s, I] raw scores, before any masking.
        ks: metric cut-offs.
        source: name of the scores in error messages.

    Returns:
        ``{"test/<metric>@k": value}`` for every metric of the suite.
    """
    data = datamodule.interactions
    user_row = {int(user): row for row, user in enumerate(user_ids)}
    item_column = {int(item): column for column, item in enumerate(item_ids)}
    missing_items = [int(item) for item in data.item_ids if int(item) not in item_column]
    if missing_items or len(item_column) != data.num_items:
        raise ValueError(
            f"{source}: the scores cover {len(item_column)} items and our catalogue {data.num_items}; "
            f"item ids missing from the scores: {missing_items[:10]}. Export the split again and rerun RecBole"
        )
    columns = torch.tensor([item_column[int(item)] for item in data.item_ids])  # our item index -> score column

    stage = datamodule.stages["test"]
    suite = RankingMetricSuite(
        ks,
        data.num_items,
        item_categories=datamodule.item_categories,
        item_popularity=datamodule.item_popularity,
        num_users=datamodule.num_users,
        item_interactions=datamodule.item_interaction_counts,
    )
    batch_size = datamodule.config.eval_batch_size
    for start in range(0, len(stage.users), batch_size):
        users = stage.users[start : start + batch_size]
        missing_users = [int(data.user_ids[user]) for user in users if int(data.user_ids[user]) not in user_row]
        if missing_users:
            raise ValueError(f"{source}: no scores for test user id(s) {missing_users[:10]}")
        rows = torch.tensor([user_row[int(data.user_ids[user])] for user in users])
        batch_scores = scores[rows][:, columns].float()  # [B, I] in our item order, a copy
        history = torch.zeros_like(batch_scores, dtype=torch.bool)
        target = torch.zeros_like(batch_scores, dtype=torch.bool)
        exclude_rows, exclude_items = stage.exclude.gather(users)
        target_rows, target_items = stage.targets.gather(users)
        history[torch.from_numpy(exclude_rows), torch.from_numpy(exclude_items)] = True
        target[torch.from_numpy(target_rows), torch.from_numpy(target_items)] = True
        batch_scores.masked_fill_(history, float("-inf"))
        suite.update(batch_scores, target, history=history)
    return {f"test/{name}": float(value) for name, value in suite.compute().items()}


def run_score(args) -> None:
    """Score RecBole's raw test scores with our suite, under our test masking, and write ``our_suite.json``."""
    cfg = load_train_config(PROTOCOL + [f"data.split_seed={args.split_seed}"] + list(args.override))
    datamodule = RecDataModule(cfg.data, seed=0)
    datamodule.setup("test")
    saved = np.load(args.scores)
    values = score_with_suite(
        datamodule, saved["users"], saved["items"], torch.from_numpy(saved["scores"]), cfg.eval.ks, str(args.scores)
    )
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    write_json_atomic(output / "our_suite.json", {"scores": str(args.scores), "test": values})
    log.info("our suite on %s: ndcg@10 %.4f", args.scores, values["test/ndcg@10"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["train", "score"])
    parser.add_argument("--output", required=True, help="folder for result.json or our_suite.json")
    parser.add_argument("--model", default="graphsage", choices=sorted(OUR_MODELS))
    parser.add_argument("--scores", type=Path, help="test_scores.npz written by run_recbole.py (score)")
    parser.add_argument("--seed", type=int, default=42, help="training seed")
    parser.add_argument("--split-seed", type=int, default=2020, help="data.split_seed of the exported split")
    parser.add_argument(
        "--protocol", default="ratio", choices=["ratio", "loo"],
        help="split for train (score always uses ratio): ratio, RecBole's random 8:1:1; loo, leave-one-out by time",
    )
    parser.add_argument("--override", action="append", default=[], help="extra config override key=value, repeatable")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument(
        "--train-budget", type=float, default=None,
        help="stop after the epoch in which this many seconds of training (validation excluded) have passed",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.command == "train":
        run_train(args)
    else:
        run_score(args)


if __name__ == "__main__":
    main()
