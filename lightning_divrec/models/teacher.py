"""The frozen teacher of distillation: loading a ranker checkpoint and precomputing its targets.

Legend: U users, I items, M teacher list length, C categories.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import torch

from lightning_divrec.metrics.functional.calibration import category_distribution
from lightning_divrec.metrics.functional.ranking import topk_indices
from lightning_divrec.models.base import RankingModule
from lightning_divrec.rerank.rerank import Candidates, rerank

log = logging.getLogger(__name__)


def load_teacher(path: str | Path, datamodule) -> RankingModule:
    """Load any registered ranker from a checkpoint written by ``train``, frozen and in eval mode.

    The model class is the one that ``run_config.model.name`` in the
    checkpoint names. The checkpoint's data fingerprint must equal the data
    module's, because a teacher trained on other data (or another split)
    would rank items by ids that mean something else.

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: the file was not written by ``train``, names an unknown
            model, or was trained on other data.
    """
    from lightning_divrec.models import MODELS

    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"model.teacher_ckpt={path}: no such checkpoint file; train a teacher first and pass its "
            "runs/<run>/checkpoints/best.ckpt"
        )
    payload = torch.load(path, map_location="cpu", weights_only=True)
    try:
        name = payload["hyper_parameters"]["run_config"]["model"]["name"]
        fingerprint = payload["divrec"]["data_fingerprint"]
    except (KeyError, TypeError) as error:
        raise ValueError(f"model.teacher_ckpt={path} was not written by lightning_divrec's train (missing {error})") from error
    if name not in MODELS:
        raise ValueError(f"model.teacher_ckpt={path} contains model {name!r}, which is not registered; registered models: {', '.join(MODELS)}")
    if fingerprint != datamodule.fingerprint():
        raise ValueError(
            f"model.teacher_ckpt={path} was trained on other data or another split (fingerprint "
            f"{str(fingerprint)[:12]} vs {datamodule.fingerprint()[:12]}); train the teacher with the same data.* settings"
        )
    teacher = MODELS[name].load_from_checkpoint(path, map_location="cpu", weights_only=True)
    teacher.attach_data(datamodule)
    teacher.requires_grad_(False)
    teacher.eval()
    log.info("teacher: %s from %s, %d parameters", name, path, count_parameters(teacher))
    return teacher


def count_parameters(module: torch.nn.Module) -> int:
    """Return the number of scalar parameters of ``module``, trainable or not."""
    return sum(parameter.numel() for parameter in module.parameters())


@dataclass
class TeacherTargets:
    """The teacher's list of each user's unseen items and the logits the student is taught."""

    items: torch.Tensor
    """[U, M] item indices, first position first; -1 in an empty slot."""
    logits: torch.Tensor
    """[U, M] float32 teacher logits of those items, decreasing along each row; -inf in an empty slot."""
    valid: torch.Tensor
    """[U, M] bool, False in an empty slot (a user with fewer than M unseen items)."""


@torch.no_grad()
def compute_teacher_targets(
    teacher: RankingModule,
    datamodule,
    list_length: int,
    rerank_method: str = "none",
    rerank_trade_off: float = 0.5,
    rerank_candidates: int = 200,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
) -> TeacherTargets:
    """Rank every user's unseen items with the teacher and keep the first ``list_length``.

    Training items are removed from the ranking, because evaluation removes
    them too, so the student is taught the order that it is judged on.

    With ``rerank_method`` ``mmr`` or ``dpp`` (genre Jaccard similarity), the
    list is the teacher's top ``rerank_candidates`` re-ranked at
    ``rerank_trade_off``. Its items then get the teacher's own top
    ``list_length`` scores in descending order, position by position, so
    the target keeps the teacher's score scale but follows the diverse order.
    """
    if rerank_method not in ("none", "mmr", "dpp"):
        raise ValueError(f"model.teacher_rerank={rerank_method!r} is not supported; choose none, mmr or dpp")
    list_length = min(list_length, datamodule.num_items)
    categories = datamodule.item_categories.to(device)
    history = datamodule.train_history
    teacher.prepare_scoring()
    items, logits = [], []
    for start in range(0, datamodule.num_users, batch_size):
        users = torch.arange(start, min(start + batch_size, datamodule.num_users))
        scores = teacher.score(users.to(device)).to(torch.float32, copy=True)  # [B, I]
        history_mask = torch.zeros_like(scores, dtype=torch.bool)
        rows, seen = history.gather(users.numpy())
        history_mask[torch.from_numpy(rows), torch.from_numpy(seen)] = True
        scores.masked_fill_(history_mask, float("-inf"))
        if rerank_method == "none":
            chosen = topk_indices(scores, list_length)  # [B, M]
            chosen_logits = torch.gather(scores, 1, chosen)
        else:
            candidates = Candidates.from_scores(
                scores,
                max(rerank_candidates, list_length),
                item_categories=categories,
                history_distribution=category_distribution(history_mask, categories),
            )
            chosen = rerank(rerank_method, candidates, list_length, rerank_trade_off)  # [B, M], -1 when empty
            # Candidate scores are sorted, so position r gets the r-th best teacher score.
            chosen_logits = candidates.scores[:, :list_length].clone()
            chosen_logits.masked_fill_(chosen < 0, float("-inf"))
        empty = chosen_logits == float("-inf")
        items.append(chosen.masked_fill(empty, -1))
        logits.append(chosen_logits)
    items_all, logits_all = torch.cat(items), torch.cat(logits)
    return TeacherTargets(items=items_all, logits=logits_all, valid=items_all >= 0)
