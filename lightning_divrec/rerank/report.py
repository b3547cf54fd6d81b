"""Write the trade-off sweep as CSV, JSON, a Pareto-front plot and a short summary."""

from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path
from typing import Sequence

from lightning_divrec.rerank.sweep import knee_point, pareto_front
from lightning_divrec.training.run_dir import write_json_atomic, write_text_atomic

log = logging.getLogger(__name__)

PLOT_DIVERSITY_KEYS = ("ild", "coverage", "novelty")


def write_report(rows: Sequence[dict], folder: Path, k: int, diversity: str = "ild") -> dict:
    """Write ``tradeoff.csv``, ``tradeoff.json``, ``tradeoff.png`` and ``tradeoff.md`` into ``folder``.

    Returns the summary: the Pareto front on NDCG@k against ``diversity``@k
    (``ild`` or ``ild_cosine``) and its knee.
    """
    relevance_key, diversity_key = f"ndcg@{k}", f"{diversity}@{k}"
    front = pareto_front(rows, relevance_key, diversity_key)
    knee = knee_point(rows, front, relevance_key, diversity_key)
    baseline = next(row for row in rows if row["method"] == "none")
    summary = {
        "relevance_key": relevance_key,
        "diversity_key": diversity_key,
        "baseline": baseline,
        "front": [rows[index] for index in front],
        "knee": rows[knee],
    }
    folder.mkdir(parents=True, exist_ok=True)

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(folder / "tradeoff.csv", buffer.getvalue())
    write_json_atomic(folder / "tradeoff.json", {"points": list(rows)} | summary)
    write_text_atomic(folder / "tradeoff.md", summary_text(summary))
    plot_front(rows, front, k, folder / "tradeoff.png", diversity)
    return summary


def summary_text(summary: dict) -> str:
    """Return a short human-readable account of the front and its knee."""
    relevance_key, diversity_key = summary["relevance_key"], summary["diversity_key"]
    baseline, knee = summary["baseline"], summary["knee"]

    def change(row: dict, key: str) -> str:
        return f"{100 * (row[key] / baseline[key] - 1):+.1f}%" if baseline[key] else "n/a"

    lines = [
        f"# Relevance/diversity trade-off ({relevance_key} against {diversity_key})",
        "",
        f"Without re-ranking: {relevance_key} {baseline[relevance_key]:.4g}, {diversity_key} {baseline[diversity_key]:.4g}.",
        "",
        f"Knee of the Pareto front: {knee['method']} at trade_off {knee['trade_off']:g}, "
        f"{relevance_key} {knee[relevance_key]:.4g} ({change(knee, relevance_key)}), "
        f"{diversity_key} {knee[diversity_key]:.4g} ({change(knee, diversity_key)}).",
        "",
        "| method | trade_off | " + relevance_key + " | " + diversity_key + " | change in relevance | change in diversity |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in summary["front"]:
        lines.append(
            # 4 significant digits, so that a metric near 0 (cosine ILD) keeps its resolution
            f"| {row['method']} | {row['trade_off']:g} | {row[relevance_key]:.4g} | {row[diversity_key]:.4g} "
            f"| {change(row, relevance_key)} | {change(row, diversity_key)} |"
        )
    return "\n".join(lines) + "\n"


def plot_front(rows: Sequence[dict], front: Sequence[int], k: int, path: Path, diversity: str = "ild") -> None:
    """Plot NDCG@k against the front's diversity metric, coverage@k and novelty@k, one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(PLOT_DIVERSITY_KEYS), figsize=(15, 4.5))
    methods = sorted({row["method"] for row in rows if row["method"] != "none"})
    baseline = next(row for row in rows if row["method"] == "none")
    for axis, name in zip(axes, (diversity,) + PLOT_DIVERSITY_KEYS[1:]):
        key = f"{name}@{k}"
        for method in methods:
            points = [baseline] + sorted((row for row in rows if row["method"] == method), key=lambda row: row["trade_off"])
            axis.plot([row[key] for row in points], [row[f"ndcg@{k}"] for row in points], marker="o", label=method)
        if name == diversity:
            axis.scatter([rows[i][key] for i in front], [rows[i][f"ndcg@{k}"] for i in front],
                         s=120, facecolors="none", edgecolors="black", label="Pareto front")
        axis.scatter([baseline[key]], [baseline[f"ndcg@{k}"]], marker="*", s=200, color="black", label="no re-ranking")
        axis.set_xlabel(key)
        axis.set_ylabel(f"ndcg@{k}")
        axis.grid(alpha=0.3)
    axes[0].legend()
    figure.suptitle("Relevance against diversity as the trade-off knob goes from 0 to 1")
    figure.tight_layout()
    temporary = path.with_suffix(".tmp.png")
    figure.savefig(temporary, dpi=110)
    plt.close(figure)
    temporary.replace(path)


def log_to_wandb(rows: Sequence[dict], folder: Path, project: str) -> str:
    """Log the sweep as a W&B table and the plot as an image in an offline run; return the run id."""
    import wandb

    run = wandb.init(project=project, dir=str(folder), mode="offline", job_type="tradeoff", reinit=True)
    try:
        columns = list(rows[0])
        table = wandb.Table(columns=columns, data=[[row[column] for column in columns] for row in rows])
        run.log({"tradeoff/table": table, "tradeoff/plot": wandb.Image(str(folder / "tradeoff.png"))})
        return run.id
    finally:
        run.finish()
