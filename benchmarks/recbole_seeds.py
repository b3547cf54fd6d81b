"""Summarise several side-by-side runs that differ only in the training seed.

    python benchmarks/recbole_seeds.py runs/sbs-s1 runs/sbs-s2 runs/sbs-s3 --out runs/sbs-seeds

Each folder is the ``--work-dir`` of one ``recbole_side_by_side.py`` run (same
split, ``--seed`` varied). The summary gives every model's test NDCG@10 per
seed (our suite on each model's full-catalogue scores), with its mean and
sample standard deviation. For each seed it also gives the ratio of our
GraphSAGE to the better of RecBole's BPR and LightGCN. Written to ``<out>/seeds.md`` and
``<out>/seeds.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

METRIC = "test/ndcg@10"
BASELINES = ("recbole-BPR", "recbole-LightGCN")


def read_run(folder: Path) -> dict:
    report_path = folder / "side_by_side.json"
    if not report_path.is_file():
        raise SystemExit(f"{report_path} not found: pass the --work-dir folder of a finished recbole_side_by_side.py run")
    report = json.loads(report_path.read_text())
    seed = _seed_of(report["command"])
    return {"folder": str(folder), "seed": seed, "command": report["command"],
            "ndcg": {model: result["test"][METRIC] for model, result in report["results"].items()}}


def _seed_of(command: str) -> int | None:
    words = command.replace("`", " ").split()
    seeds = {int(words[i + 1]) for i, word in enumerate(words[:-1]) if word == "--seed"}
    if len(seeds) > 1:
        raise SystemExit(f"invalid folder: its runs used different seeds {sorted(seeds)}; keep one seed per folder. Commands: {command}")
    return seeds.pop() if seeds else 42  # recbole_side_by_side.py's default --seed


def summarise(runs: list[dict]) -> dict:
    models = sorted({model for run in runs for model in run["ndcg"]})
    table = {}
    for model in models:
        values = [run["ndcg"][model] for run in runs if model in run["ndcg"]]
        table[model] = {
            "values": values, "mean": statistics.fmean(values),
            "sd": statistics.stdev(values) if len(values) > 1 else None,
        }
    ratios = []
    for run in runs:
        baselines = [run["ndcg"][name] for name in BASELINES if name in run["ndcg"]]
        if "ours-graphsage" in run["ndcg"] and baselines:
            ratios.append({"seed": run["seed"], "ratio": run["ndcg"]["ours-graphsage"] / max(baselines)})
    summary = {"runs": runs, "models": table, "graphsage_ratio_per_seed": ratios}
    if "ours-graphsage" in table and any(name in table for name in BASELINES):
        better = max(table[name]["mean"] for name in BASELINES if name in table)
        summary["graphsage_ratio_of_means"] = table["ours-graphsage"]["mean"] / better
    return summary


def markdown(summary: dict) -> str:
    seeds = [run["seed"] for run in summary["runs"]]
    lines = [
        "| model | " + " | ".join(f"seed {seed}" for seed in seeds) + " | mean | sd |",
        "| --- |" + " --- |" * (len(seeds) + 2),
    ]
    for model, row in summary["models"].items():
        cells = [f"{run['ndcg'][model]:.4f}" if model in run["ndcg"] else "" for run in summary["runs"]]
        sd = "" if row["sd"] is None else f"{row['sd']:.4f}"
        lines.append(f"| {model} | " + " | ".join(cells) + f" | {row['mean']:.4f} | {sd} |")
    lines.append("")
    for row in summary["graphsage_ratio_per_seed"]:
        lines.append(f"- seed {row['seed']}: ours-graphsage / better RecBole baseline = {row['ratio']:.3f}")
    if "graphsage_ratio_of_means" in summary:
        lines.append(f"- ratio of the means: {summary['graphsage_ratio_of_means']:.3f}")
    lines += ["", "Commands:", ""] + [f"- `{run['command']}`" for run in summary["runs"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path, help="--work-dir folders of recbole_side_by_side.py runs")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    summary = summarise([read_run(folder) for folder in args.folders])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "seeds.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    text = markdown(summary)
    (args.out / "seeds.md").write_text(text, encoding="utf-8")
    print(text, end="")


if __name__ == "__main__":
    main()
