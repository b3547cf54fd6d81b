"""Distillation: a frozen teacher ranker teaches a small student ranker to rank.

The student is any registered model whose class implements ``score_items``
(GraphSAGE, and matrix factorisation as GraphSAGE with ``num_layers=0``).
The teacher is any registered model, loaded from ``model.teacher_ckpt``.

Legend: B batch, U users, I items, M teacher list length, N sampled negatives per row.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from lightning_divrec.models.base import RankingModule
from lightning_divrec.models.distill_report import distillation_report
from lightning_divrec.models.distill_losses import listwise_kd_loss, position_weights, ranking_distillation_loss
from lightning_divrec.models.losses import bpr_loss
from lightning_divrec.models.teacher import TeacherTargets, compute_teacher_targets, count_parameters, load_teacher
from lightning_divrec.training.run_dir import write_json_atomic

log = logging.getLogger(__name__)

TEACHER_SCORE_CACHE_LIMIT = 50_000_000
"""Largest U * I for which the teacher's full score matrix is kept in memory
(200 MB in float32). Above it, the teacher scores each batch's users again."""


def check_distillation_config(config: dict) -> None:
    """Raise ``ValueError`` naming every ``model.*`` distillation value out of range."""
    problems = []
    for key in ("task_weight", "kd_weight", "rd_weight"):
        if config[key] < 0:
            problems.append(f"model.{key}={config[key]} must be at least 0")
    for key in ("temperature", "rd_decay"):
        if config[key] <= 0:
            problems.append(f"model.{key}={config[key]} must be positive")
    for key in ("teacher_top_m", "kd_negatives", "rd_top_k", "teacher_rerank_candidates"):
        if config[key] < 1:
            problems.append(f"model.{key}={config[key]} must be at least 1")
    if not 0 <= config["teacher_rerank_trade_off"] <= 1:
        problems.append(f"model.teacher_rerank_trade_off={config['teacher_rerank_trade_off']} must lie in [0, 1]")
    if config["teacher_rerank"] not in ("none", "mmr", "dpp"):
        problems.append(f"model.teacher_rerank={config['teacher_rerank']!r} is not supported; choose none, mmr or dpp")
    if config["rd_top_k"] > config["teacher_top_m"]:
        problems.append(f"model.rd_top_k={config['rd_top_k']} must not exceed model.teacher_top_m={config['teacher_top_m']}")
    if problems:
        raise ValueError("invalid distillation settings: " + "; ".join(problems))


class DistillationModule(RankingModule):
    """Trains ``self.student`` with its BPR task loss plus losses that match a frozen teacher.

    Per training row (user u, positive, negative) the loss is

        task_weight * BPR(u, positive, negative)
        + kd_weight * listwise KD over u's teacher list and sampled negatives
        + rd_weight * ranking distillation of u's first ``rd_top_k`` teacher items

    The teacher is built in ``setup_teacher`` (called by ``setup`` in the
    ``fit`` stage only) and stored outside the module's registered children.
    It is therefore never in ``parameters()`` (so never in the optimizer) and
    never in ``state_dict()`` (so never in a checkpoint). Lightning's
    ``train()`` and ``to()`` calls do not reach it either, so it stays in eval
    mode with ``requires_grad`` off, and ``on_fit_start`` moves it to the device.
    Its list for every user is computed once there and kept for the run.

    ``score`` is the student's, so a checkpoint of this module evaluates
    without the teacher.
    """

    def __init__(
        self,
        num_users: int,
        num_items: int,
        model_config: dict,
        ks: list[int],
        run_config: dict | None = None,
        student_arguments: dict | None = None,
    ):
        super().__init__(num_users, num_items, model_config, ks, run_config)
        from lightning_divrec.models import MODELS

        check_distillation_config(model_config)
        student_config = dict(model_config["student"])
        student_name = student_config.get("name")
        if student_name not in MODELS or student_name == "distill":
            choices = ", ".join(name for name in MODELS if name != "distill")
            raise ValueError(f"model.student.name={student_name!r} is not a student model; choose one of: {choices}")
        student = MODELS[student_name](num_users, num_items, student_config, ks, run_config=run_config, **(student_arguments or {}))
        if not student.trainable or type(student).score_items is RankingModule.score_items:
            raise ValueError(f"model.student.name={student_name!r} cannot be a student: it has no trainable score_items")
        self.student = student
        # Set through object.__setattr__ so that nn.Module does not register the
        # teacher as a child (see the class docstring).
        object.__setattr__(self, "_teacher", None)
        self.targets: TeacherTargets | None = None
        self._negative_sampler = None
        self._teacher_scores: torch.Tensor | None = None
        self.report: dict | None = None
        """Teacher and student sizes, scoring times and test metrics, set by the test pass of a training run."""

    @classmethod
    def from_datamodule(cls, datamodule, model_config: dict, ks: list[int], run_config: dict | None = None) -> "DistillationModule":
        """Build the student class's way (item feature sizes read from the data) and keep its extra arguments."""
        from lightning_divrec.models import MODELS

        student_class = MODELS.get(model_config["student"].get("name"))
        student_arguments = {}
        if student_class is not None and student_class is not cls:
            probe = student_class.from_datamodule(datamodule, dict(model_config["student"]), ks, run_config=run_config)
            shared = ("num_users", "num_items", "model_config", "ks", "run_config")
            student_arguments = {key: value for key, value in probe.hparams.items() if key not in shared}
        return cls(datamodule.num_users, datamodule.num_items, model_config, ks, run_config, student_arguments=student_arguments)

    # ----- teacher -----------------------------------------------------------------------------

    @property
    def teacher(self) -> RankingModule | None:
        """The frozen teacher, or None outside a training run (when evaluating a checkpoint)."""
        return self._teacher

    def setup(self, stage: str) -> None:
        super().setup(stage)
        if stage == "fit" and self._teacher is None:
            self.setup_teacher(self.trainer.datamodule)

    def setup_teacher(self, datamodule) -> None:
        """Load the teacher named by ``model.teacher_ckpt`` and freeze it."""
        path = self.model_config.get("teacher_ckpt")
        if not path:
            raise ValueError("model.teacher_ckpt is required to train model=distill; pass a checkpoint of a trained ranker")
        teacher = load_teacher(path, datamodule)
        object.__setattr__(self, "_teacher", teacher)
        log.info(
            "distillation: teacher %d parameters, student %d parameters",
            count_parameters(teacher), count_parameters(self.student),
        )

    def on_fit_start(self) -> None:
        teacher = self._teacher
        teacher.to(self.device)
        teacher.eval()
        self.targets = compute_teacher_targets(
            teacher,
            self.trainer.datamodule,
            self.model_config["teacher_top_m"],
            rerank_method=self.model_config["teacher_rerank"],
            rerank_trade_off=self.model_config["teacher_rerank_trade_off"],
            rerank_candidates=self.model_config["teacher_rerank_candidates"],
            batch_size=self.trainer.datamodule.config.eval_batch_size,
            device=self.device,
        )
        self._teacher_scores = None
        num_users, num_items = self.num_users, self.num_items
        if num_users * num_items <= TEACHER_SCORE_CACHE_LIMIT:
            # Scoring once here replaces one teacher pass over the catalogue per training step.
            with torch.no_grad(), torch.autocast(device_type=self.device.type, enabled=False):
                users = torch.arange(num_users, device=self.device)
                self._teacher_scores = torch.cat([teacher.score(chunk).float() for chunk in torch.split(users, 1024)])  # [U, I]

    def train(self, mode: bool = True):
        # The teacher is not a registered child, so this only guards against a
        # caller that attached it by hand: it must never leave eval mode.
        super().train(mode)
        if self._teacher is not None:
            self._teacher.eval()
        return self

    @torch.no_grad()
    def _teacher_item_scores(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Return float32 teacher scores of ``items`` [B, N] for ``users`` [B], without autocast."""
        if self._teacher_scores is not None:
            return torch.gather(self._teacher_scores[users], 1, items)  # [B, N]
        unique_users, inverse = torch.unique(users, return_inverse=True)
        with torch.autocast(device_type=self.device.type, enabled=False):
            scores = self._teacher.score(unique_users).float()  # [B_unique, I]
        return torch.gather(scores[inverse], 1, items)  # [B, N]

    # ----- data and scoring --------------------------------------------------------------------

    def attach_data(self, datamodule) -> None:
        self.student.attach_data(datamodule)
        self._negative_sampler = datamodule.negative_sampler

    def score(self, users: torch.Tensor) -> torch.Tensor:
        return self.student.score(users)

    def prepare_scoring(self) -> None:
        self.student.prepare_scoring()

    def finish_scoring(self) -> None:
        self.student.finish_scoring()

    def item_embeddings(self) -> torch.Tensor | None:
        return self.student.item_embeddings()

    # ----- training ----------------------------------------------------------------------------

    def _sample_negatives(self, users: torch.Tensor, count: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw ``count`` items per user uniformly from the catalogue and flag the usable ones.

        One draw and one membership test per step, because the exact
        rejection sampler of the training triples redraws until every item
        is a non-positive and costs several times more here. A draw that is a
        training positive is flagged unusable and left out of the losses, so
        the usable draws are uniform over the user's non-training items.

        Shapes: users [B] -> items [B, N], usable [B, N] bool.
        """
        items = torch.randint(0, self.num_items, (len(users), count), device=users.device)  # [B, N]
        repeated = users.detach().cpu().repeat_interleave(count)
        positive = self._negative_sampler.is_positive(repeated, items.flatten().cpu()).view(len(users), count)
        return items, ~positive.to(users.device)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        config = self.model_config
        users = batch["users"]  # [B]
        batch_size = len(users)
        top_items = self.targets.items[users]  # [B, M]
        top_logits = self.targets.logits[users]  # [B, M]
        top_valid = self.targets.valid[users]  # [B, M]
        negatives, negative_valid = self._sample_negatives(users, config["kd_negatives"])  # [B, N], [B, N]
        # A sampled item that is already in the teacher's list would count twice.
        negative_valid &= ~(negatives.unsqueeze(2) == top_items.unsqueeze(1)).any(dim=2)  # [B, N]

        list_length = top_items.shape[1]
        items = torch.cat([batch["positives"].unsqueeze(1), batch["negatives"].unsqueeze(1), top_items.clamp_min(0), negatives], dim=1)
        scores = self.student.score_items(users, items)  # [B, 2 + M + N]
        student_top = scores[:, 2 : 2 + list_length]
        student_negatives = scores[:, 2 + list_length :]

        task_loss = bpr_loss(scores[:, 0], scores[:, 1])
        loss = config["task_weight"] * task_loss
        self.log("train/task_loss", task_loss, on_step=True, on_epoch=True, batch_size=batch_size, sync_dist=True)

        if config["kd_weight"] > 0:
            teacher_negatives = self._teacher_item_scores(users, negatives)  # [B, N]
            if config["teacher_rerank"] != "none":
                # Keep every listed item above every unlisted one in the target:
                # the re-ranked list may leave out items the teacher scores higher.
                lowest = torch.where(top_valid, top_logits, torch.full_like(top_logits, float("inf"))).amin(dim=1, keepdim=True)
                teacher_negatives = torch.minimum(teacher_negatives, lowest)
            kd_loss = listwise_kd_loss(
                torch.cat([student_top, student_negatives], dim=1),
                torch.cat([top_logits, teacher_negatives], dim=1),
                temperature=config["temperature"],
                mask=torch.cat([top_valid, negative_valid], dim=1),
            )
            loss = loss + config["kd_weight"] * kd_loss
            self.log("train/kd_loss", kd_loss, on_step=True, on_epoch=True, batch_size=batch_size, sync_dist=True)

        if config["rd_weight"] > 0:
            top_k = min(config["rd_top_k"], list_length)
            weights = position_weights(top_k, config["rd_decay"], device=scores.device)
            rd_loss = ranking_distillation_loss(
                student_top[:, :top_k], student_negatives, weights, top_valid[:, :top_k], negative_valid
            )
            loss = loss + config["rd_weight"] * rd_loss
            self.log("train/rd_loss", rd_loss, on_step=True, on_epoch=True, batch_size=batch_size, sync_dist=True)

        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=batch_size, sync_dist=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.student.parameters(), lr=self.learning_rate(), weight_decay=self.model_config["weight_decay"])

    # ----- report ------------------------------------------------------------------------------

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        if self._teacher is None or not self.trainer.is_global_zero:
            return
        datamodule = self.trainer.datamodule
        users = torch.from_numpy(datamodule.stages["test"].users).to(self.device)
        report = distillation_report(self._teacher, self.student, users, datamodule.config.eval_batch_size)
        report["test"] = self.results["test"]
        self.report = report
        path = Path(self.trainer.default_root_dir) / "distillation_report.json"
        write_json_atomic(path, report)
        log.info(
            "distillation report in %s: student %d / teacher %d parameters (%.1f%%), scoring %.2fx faster per batch",
            path, report["student_params"], report["teacher_params"], 100 * report["param_ratio"], report["batch_speedup"],
        )
        summary = {
            "distill/teacher_params": report["teacher_params"],
            "distill/student_params": report["student_params"],
            "distill/teacher_batch_seconds": report["teacher_scoring"]["batch_seconds"],
            "distill/student_batch_seconds": report["student_scoring"]["batch_seconds"],
            "distill/batch_speedup": report["batch_speedup"],
        }
        for logger in self.loggers:
            logger.log_metrics(summary)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        leaked = [key for key in checkpoint["state_dict"] if key.startswith("_teacher.") or key.startswith("teacher.")]
        if leaked:
            raise RuntimeError(f"teacher weights reached the student checkpoint: {leaked[:3]}")
