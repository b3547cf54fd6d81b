"""Size and speed of a teacher and its student: parameter counts and full-catalogue scoring time.

Legend: B users per batch, I items.
"""

from __future__ import annotations

import time

import torch

from lightning_divrec.models.base import RankingModule
from lightning_divrec.models.teacher import count_parameters


@torch.no_grad()
def time_scoring(model: RankingModule, users: torch.Tensor, batch_size: int, repeats: int = 3) -> dict[str, float]:
    """Time full-catalogue scoring of ``users`` in batches; return the best of ``repeats`` passes.

    ``pass_seconds`` covers ``prepare_scoring`` (a graph model's propagation)
    plus ``score`` of every batch; ``batch_seconds`` is ``score`` alone per
    batch of ``batch_size`` users, averaged over the batches. The best pass
    is kept because other processes on a shared machine only ever add time.
    """
    was_training = model.training
    model.eval()
    best_pass, best_batch = float("inf"), float("inf")
    batches = list(torch.split(users, batch_size))
    for _ in range(repeats):
        model.finish_scoring()
        start = time.perf_counter()
        model.prepare_scoring()
        scoring = 0.0
        for batch in batches:
            batch_start = time.perf_counter()
            scores = model.score(batch)  # [B, I]
            scores.sum().item()  # forces the work to finish on asynchronous devices
            scoring += time.perf_counter() - batch_start
        best_pass = min(best_pass, time.perf_counter() - start)
        best_batch = min(best_batch, scoring / len(batches))
    model.finish_scoring()
    model.train(was_training)
    return {"pass_seconds": best_pass, "batch_seconds": best_batch, "batch_size": batch_size, "users": len(users)}


def distillation_report(teacher: RankingModule, student: RankingModule, users: torch.Tensor, batch_size: int) -> dict:
    """Return parameter counts and scoring times of ``teacher`` and ``student``, and their ratios."""
    teacher_params, student_params = count_parameters(teacher), count_parameters(student)
    teacher_time = time_scoring(teacher, users, batch_size)
    student_time = time_scoring(student, users, batch_size)
    return {
        "teacher_model": teacher.model_config.get("name"),
        "student_model": student.model_config.get("name"),
        "teacher_params": teacher_params,
        "student_params": student_params,
        "param_ratio": student_params / max(teacher_params, 1),
        "teacher_scoring": teacher_time,
        "student_scoring": student_time,
        "batch_speedup": teacher_time["batch_seconds"] / max(student_time["batch_seconds"], 1e-12),
        "pass_speedup": teacher_time["pass_seconds"] / max(student_time["pass_seconds"], 1e-12),
    }
