"""Train GraphSAGE variants on MovieLens-100K and tabulate relevance against diversity.

    python benchmarks/graphsage_variants.py --preset lever --seed 42
    python benchmarks/graphsage_variants.py --preset features --seed 42

Each variant is one ``train.py`` run in its own process (the command is
printed and stored), on RecBole's random 8:1:1 split by default. The table
gives test NDCG@10, Recall@10, genre ILD@10, catalogue coverage@10, novelty@10
and the wall time of the run, and the change of NDCG@10 and ILD@10 against
the first variant. Written to ``<out>/<preset>.md`` and ``<out>/<preset>.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PRESETS = {
    "lever": {
        "rebalance 0 (default)": [],
        "rebalance 0.5": ["model.rebalance_strength=0.5"],
        "rebalance 1": ["model.rebalance_strength=1.0"],
        "rebalance 2": ["model.rebalance_strength=2.0"],
    },
    "features": {
        "id embeddings (default)": [],
        "+ categories": ["model.item_features=[categories]"],
        "+ title text": ["model.item_features=[text]"],
        "+ categories + text": ["model.item_features=[categories,text]"],
    },
    "aggregation": {
        "mean (default)": [],
        "attention": ["model.aggr=attention"],
        "weighted layers": ["model.layer_combination=weighted"],
        "softmax, 8 negatives": ["model.loss=softmax", "model.num_negatives=8"],
    },
    # Candidates for a stronger default, chosen by validation NDCG@10 (the val column), not by test NDCG@10.
    "loss": {
        "bpr, 1 negative (default)": [],
        "softmax, 16 negatives": ["model.loss=softmax", "model.num_negatives=16"],
        "softmax, 64 negatives": ["model.loss=softmax", "model.num_negatives=64"],
        "softmax, 16 negatives, T 0.5": ["model.loss=softmax", "model.num_negatives=16", "model.softmax_temperature=0.5"],
        "softmax, 16 negatives, T 2": ["model.loss=softmax", "model.num_negatives=16", "model.softmax_temperature=2.0"],
        "softmax, 16 negatives, 3 layers": ["model.loss=softmax", "model.num_negatives=16", "model.num_layers=3"],
        "softmax, 16 negatives, no dropout": ["model.loss=softmax", "model.num_negatives=16", "model.dropout=0"],
        "softmax, 16 negatives, lr 0.001": ["model.loss=softmax", "model.num_negatives=16", "model.lr=0.001"],
    },
    # Second round, around the defaults that the first round chose (softmax, 16 negatives, 3 layers).
    "regularisation": {
        "default": [],
        "dropout 0.3": ["model.dropout=0.3"],
        "dropout 0.4": ["model.dropout=0.4"],
        "xavier-normal init": ["model.embedding_init=xavier_normal"],
        "embedding L2 1e-4": ["model.embedding_reg=0.0001"],
        "weighted layers": ["model.layer_combination=weighted"],
        "lr 0.003": ["model.lr=0.003"],
        "dropout 0.5": ["model.dropout=0.5"],
        "dropout 0.4, + categories": ["model.dropout=0.4", "model.item_features=[categories]"],
    },
}

COLUMNS = ("ndcg@10", "recall@10", "ild@10", "coverage@10", "novelty@10")


def run_variant(name: str, overrides: list[str], args, out: Path) -> dict:
    run_name = f"{args.preset}-{len(list(out.glob(f'{args.preset}-*')))}"
    command = [
        sys.executable, "train.py", f"data.split={args.split}", f"seed={args.seed}", f"output_dir={out}",
        f"run_name={run_name}", "logger=csv", "trainer.enable_progress_bar=false", *overrides, *args.extra,
    ]
    print(" ".join(command[1:]), flush=True)
    start = time.perf_counter()
    subprocess.run(command, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    summary = json.loads((out / run_name / "metrics.json").read_text())
    row = {
        "variant": name, "command": "python " + " ".join(command[1:]), "seconds": round(seconds, 1),
        "val_ndcg@10": summary["val"]["val/ndcg@10"], "epochs": summary["epochs_trained"],
    }
    row.update({column: summary["test"][f"test/{column}"] for column in COLUMNS})
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), required=True)
    parser.add_argument("--split", default="random_811")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "graphsage_variants")
    parser.add_argument("--only", nargs="*", help="run only these variant names")
    parser.add_argument("extra", nargs="*", help="overrides added to every run")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    rows = []
    for name, overrides in PRESETS[args.preset].items():
        if args.only and name not in args.only:
            continue
        rows.append(run_variant(name, overrides, args, args.out))
        _write(rows, args)


def _write(rows: list[dict], args) -> None:
    base = rows[0]
    lines = [
        "| variant | val NDCG@10 | NDCG@10 | Recall@10 | ILD@10 | coverage@10 | novelty@10 | NDCG change | ILD change "
        "| epochs | wall time |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        ndcg_change = row["ndcg@10"] / base["ndcg@10"] - 1
        ild_change = row["ild@10"] / base["ild@10"] - 1
        lines.append(
            f"| {row['variant']} | {row['val_ndcg@10']:.4f} | {row['ndcg@10']:.4f} | {row['recall@10']:.4f} | {row['ild@10']:.4f} | "
            f"{row['coverage@10']:.4f} | {row['novelty@10']:.3f} | {ndcg_change:+.1%} | {ild_change:+.1%} | {row['epochs']} "
            f"| {row['seconds']:.0f} s |"
        )
    commands = [f"- {row['variant']}: `{row['command']}`" for row in rows]
    (args.out / f"{args.preset}.md").write_text("\n".join(lines + [""] + commands) + "\n", encoding="utf-8")
    (args.out / f"{args.preset}.json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
