"""Train the attention ranker on MovieLens-100K for a fixed wall-clock budget and report its test metrics.

    python benchmarks/attention_budget.py --minutes 10 --output attention.json -- data.batch_size=128
    python benchmarks/attention_budget.py --minutes 10 --output text.json -- data.batch_size=128 model.text_model=all-MiniLM-L6-v2
    python benchmarks/attention_budget.py --minutes 10 --mix 0 0.25 0.5 0.75 1 --output interests.json -- \\
        data.batch_size=128 model.num_interests=4

Everything after ``--`` is a ``train.py`` override; ``model=attention`` is
always added. The run validates after every epoch, keeps the weights with the
best ``val/ndcg@10`` in memory and tests them once the budget
(``Trainer(max_time=...)``, which counts validation too) is spent. With
``--mix``, the best weights are tested once per ``model.interest_mix`` value.
Each epoch's training time (validation excluded) and the peak resident memory
of the process are recorded. The budget can stop an epoch part-way, and
Lightning still validates it, so the last entry of ``epoch_train_seconds``
may be a partial epoch.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import resource
import sys
import time
from pathlib import Path

import lightning as L
import torch
from omegaconf import OmegaConf

from lightning_divrec.config import load_train_config
from lightning_divrec.data import RecDataModule
from lightning_divrec.models import MODELS
from lightning_divrec.training.run_dir import write_json_atomic

log = logging.getLogger("attention_budget")


class EpochRecorder(L.Callback):
    """Training seconds per epoch, and the best validation NDCG@10 with a copy of its weights."""

    def __init__(self):
        self.epoch_seconds: list[float] = []
        self.validation: list[float] = []
        self.best_state: dict | None = None
        self._start = 0.0

    def on_train_epoch_start(self, trainer, module) -> None:
        self._start = time.perf_counter()

    def on_validation_epoch_start(self, trainer, module) -> None:
        # Lightning validates inside the training epoch, before on_train_epoch_end.
        if trainer.training or trainer.state.fn == "fit":
            self.epoch_seconds.append(time.perf_counter() - self._start)

    def on_train_epoch_end(self, trainer, module) -> None:
        value = module.results.get("val", {}).get("val/ndcg@10")
        if value is None:
            return
        self.validation.append(value)
        if value >= max(self.validation):
            self.best_state = copy.deepcopy(module.state_dict())
        log.info("epoch %d: %.1f s training, val/ndcg@10 %.4f", trainer.current_epoch, self.epoch_seconds[-1], value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0, help="wall-clock training budget in minutes")
    parser.add_argument("--mix", type=float, nargs="*", default=None, help="model.interest_mix values to test")
    parser.add_argument("--output", type=Path, required=True, help="JSON file for the results")
    parser.add_argument("--save-state", type=Path, default=None, help="write the best weights here (torch.save)")
    parser.add_argument(
        "--load-state", type=Path, default=None,
        help="skip training: test the weights that --save-state wrote, with the same overrides",
    )
    parser.add_argument("overrides", nargs="*", help="train.py overrides after --")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    cfg = load_train_config(["model=attention", "logger=csv", "trainer.enable_progress_bar=false"] + args.overrides)
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    datamodule = RecDataModule(cfg.data, seed=cfg.seed)
    datamodule.prepare_data()
    datamodule.setup("fit")
    container = OmegaConf.to_container(cfg, resolve=True)
    model_options = copy.deepcopy(container["model"])
    model = MODELS["attention"](datamodule.num_users, datamodule.num_items, container["model"], container["eval"]["ks"], run_config=container)
    recorder = EpochRecorder()
    seconds = int(args.minutes * 60)
    trainer = L.Trainer(
        accelerator=cfg.trainer.accelerator,
        devices=1,
        precision=cfg.trainer.precision,
        max_epochs=-1,
        max_time={"seconds": seconds},
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
        num_sanity_val_steps=0,
        callbacks=[recorder],
    )
    started = time.perf_counter()
    if args.load_state is None:
        trainer.fit(model, datamodule=datamodule)
    else:
        recorder.best_state = torch.load(args.load_state, weights_only=True)
    wall = time.perf_counter() - started
    model.load_state_dict(recorder.best_state)
    if args.save_state is not None and args.load_state is None:
        temporary = args.save_state.with_name(args.save_state.name + ".tmp")
        torch.save(recorder.best_state, temporary)
        temporary.replace(args.save_state)

    tests = {}
    for mix in args.mix if args.mix is not None else [model_options["interest_mix"]]:
        model.model_config["interest_mix"] = mix
        trainer.test(model, datamodule=datamodule, verbose=False)
        tests[str(mix)] = model.results["test"]
        log.info("interest_mix %.2f: test/ndcg@10 %.4f, test/ild@10 %.4f", mix, tests[str(mix)]["test/ndcg@10"], tests[str(mix)]["test/ild@10"])

    record = {
        "command": " ".join(sys.argv),
        "model": model_options,
        "batch_size": cfg.data.batch_size,
        "budget_seconds": seconds,
        "fit_wall_seconds": wall,
        "epochs": len(recorder.epoch_seconds),
        "epoch_train_seconds": recorder.epoch_seconds,
        "val_ndcg@10": recorder.validation,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "torch_threads": torch.get_num_threads(),
        "test": tests,
    }
    write_json_atomic(args.output, record)
    log.info("wrote %s", args.output)


if __name__ == "__main__":
    main()
