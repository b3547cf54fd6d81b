"""Export our random 8:1:1 split of MovieLens-100K as RecBole benchmark files, and compare splits.

    python benchmarks/recbole/export_split.py --output runs/recbole_bench/data --seed 2020

writes ``<output>/ml-100k-divrec/ml-100k-divrec.{train,valid,test}.inter`` (our
``random_ratio_split`` of the same interactions our data module reads, with the
original user and item ids) and ``<output>/ml-100k-divrec/ml-100k-divrec.inter`` (all
interactions, for RecBole's own split). The folder is not named ``ml-100k``
because RecBole 1.2.1 ignores ``data_path`` for that dataset name and reads
the copy in its wheel. RecBole reads the three part files
through its ``benchmark_filename`` setting, so both frameworks train and test
on the same interactions.

``compare_splits`` checks, part by part, whether RecBole's own split (written
by ``run_recbole.py split``) contains the same (user, item) pairs as ours. With
``--compare`` the report covers our split and also our split rule fed with
RecBole's shuffle (``torch.manual_seed(seed)`` then ``torch.randperm``).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from lightning_divrec.data.interactions import Interactions, build_interactions  # noqa: E402
from lightning_divrec.data.sources.ml100k import locate_ml100k  # noqa: E402
from lightning_divrec.data.splits import Split, random_ratio_split  # noqa: E402

log = logging.getLogger(__name__)

PARTS = ("train", "valid", "test")
DATASET = "ml-100k-divrec"
"""RecBole dataset name of the exported files, and the name of their folder."""
HEADER = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"


def load_ml100k(path: str | None = None) -> Interactions:
    """Read MovieLens-100K the way ``RecDataModule`` does (no rating threshold)."""
    files = locate_ml100k(path, False, "~/.cache/lightning_divrec")
    ratings, items = files.read()
    return build_interactions(ratings, items, str(files.ratings))


def write_atomic_inter(path: Path, data: Interactions, index: np.ndarray) -> None:
    """Write the interactions at ``index`` as a RecBole ``.inter`` file, through a temporary file."""
    users = data.user_ids[data.user[index]]
    items = data.item_ids[data.item[index]]
    rows = [
        f"{user}\t{item}\t{rating:g}\t{timestamp}\n"
        for user, item, rating, timestamp in zip(users, items, data.rating[index], data.timestamp[index])
    ]
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(HEADER + "".join(rows), encoding="utf-8")
    temporary.replace(path)


def export_split(output: Path, seed: int, path: str | None = None) -> tuple[Interactions, Split]:
    """Write our split and the whole table under ``output/<DATASET>``; return both."""
    data = load_ml100k(path)
    split = random_ratio_split(data, seed=seed)
    folder = output / DATASET
    folder.mkdir(parents=True, exist_ok=True)
    for name in PARTS:
        write_atomic_inter(folder / f"{DATASET}.{name}.inter", data, getattr(split, name))
    write_atomic_inter(folder / f"{DATASET}.inter", data, np.arange(len(data)))
    log.info(
        "exported %d / %d / %d interactions to %s",
        len(split.train), len(split.valid), len(split.test), folder,
    )
    return data, split


def recbole_shuffle(size: int, seed: int) -> np.ndarray:
    """Return the permutation [N] that RecBole 1.2.1 draws after ``init_seed(seed)`` (``torch.randperm``)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(size, generator=generator).numpy()


def split_pairs(data: Interactions, split: Split) -> dict[str, set[tuple[str, str]]]:
    """Return each part's (user id, item id) pairs as strings, the form RecBole writes."""
    return {
        name: set(
            zip(
                data.user_ids[data.user[getattr(split, name)]].astype(str),
                data.item_ids[data.item[getattr(split, name)]].astype(str),
            )
        )
        for name in PARTS
    }


def read_pairs(folder: Path) -> dict[str, set[tuple[str, str]]]:
    """Read the ``<part>.tsv`` files of ``run_recbole.py split``."""
    parts = {}
    for name in PARTS:
        lines = (folder / f"{name}.tsv").read_text().splitlines()
        parts[name] = {tuple(line.split("\t")) for line in lines}
    return parts


def compare_splits(ours: dict[str, set], theirs: dict[str, set]) -> dict:
    """Compare two splits part by part: pair counts, shared pairs, and per-user part sizes."""
    report: dict = {"identical": all(ours[name] == theirs[name] for name in PARTS), "parts": {}}
    for name in PARTS:
        report["parts"][name] = {
            "ours": len(ours[name]),
            "recbole": len(theirs[name]),
            "shared": len(ours[name] & theirs[name]),
        }

    def sizes(parts):
        counts: dict[tuple[str, str], int] = {}
        for name in PARTS:
            for user, _ in parts[name]:
                counts[(user, name)] = counts.get((user, name), 0) + 1
        return counts

    report["same_part_sizes_per_user"] = sizes(ours) == sizes(theirs)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", type=Path, required=True, help=f"folder to write {DATASET}/ into")
    parser.add_argument("--seed", type=int, default=2020, help="split seed (data.split_seed)")
    parser.add_argument("--data-path", default=None, help="MovieLens-100K folder (data.path); default: the recbole wheel")
    parser.add_argument("--compare", type=Path, default=None, help="folder of RecBole's own split to compare with ours")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    data, split = export_split(args.output, args.seed, args.data_path)
    if args.compare is not None:
        theirs = read_pairs(args.compare)
        same_shuffle = random_ratio_split(data, seed=args.seed, permutation=recbole_shuffle(len(data), args.seed))
        report = {
            "ours": compare_splits(split_pairs(data, split), theirs),
            "ours_with_recbole_shuffle": compare_splits(split_pairs(data, same_shuffle), theirs),
        }
        sys.stdout.write(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
