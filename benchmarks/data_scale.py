"""Time preprocessing, splitting and caching of a large synthetic dataset, then a cached reload.

    python benchmarks/data_scale.py --users 1000000 --items 100000 --interactions 20000000

Two phases run in separate child processes, so each peak resident memory
(``ru_maxrss``) belongs to one phase:

* ``build``: generate the synthetic interactions (timed separately), apply
  the duplicate policy and the k-core, number users and items, split, and
  write the prepared dataset into the cache;
* ``load``: read the prepared dataset back through ``load_or_build``, which
  must find the cache entry written by ``build``.

The cache folder is emptied first unless ``--keep-cache`` is given. The
result is printed as JSON.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from omegaconf import OmegaConf

from lightning_divrec.config.schema import DataConfig, SyntheticConfig


def data_config(args: argparse.Namespace):
    """Return the ``data`` config of the benchmark dataset."""
    return OmegaConf.structured(
        DataConfig(
            name="synthetic",
            cache=True,
            cache_dir=args.cache_dir,
            duplicates=args.duplicates,
            min_user_interactions=args.min_user_interactions,
            min_item_interactions=args.min_item_interactions,
            split=args.split,
            synthetic=SyntheticConfig(
                num_users=args.users,
                num_items=args.items,
                num_interactions=args.interactions,
                num_categories=50,
                seed=0,
            ),
        )
    )


def peak_rss_gib() -> float:
    """Return this process's peak resident memory in GiB (Linux reports ``ru_maxrss`` in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def run_build(args: argparse.Namespace) -> dict:
    from lightning_divrec.data.cache import cache_folder, cache_key, save_prepared
    from lightning_divrec.data.interactions import build_interactions
    from lightning_divrec.data.prepare import PreparedData, make_split
    from lightning_divrec.data.preprocess import preprocess
    from lightning_divrec.data.sources.registry import read_source

    config = data_config(args)
    times = {}
    started = time.perf_counter()
    tables = read_source(config)
    times["generate_s"] = time.perf_counter() - started

    mark = time.perf_counter()
    frame = preprocess(tables.interactions, config, tables.origin)
    del tables.interactions
    times["duplicates_and_k_core_s"] = time.perf_counter() - mark

    mark = time.perf_counter()
    data = build_interactions(frame, tables.items, tables.origin)
    del frame
    times["contiguous_ids_s"] = time.perf_counter() - mark

    mark = time.perf_counter()
    split = make_split(data, config, tables.origin)
    times["split_s"] = time.perf_counter() - mark

    mark = time.perf_counter()
    key, inputs = cache_key(config)
    folder = cache_folder(config, key)
    save_prepared(PreparedData(data, split, tables.origin, tables.description), folder, inputs)
    times["cache_write_s"] = time.perf_counter() - mark
    times["preprocess_split_cache_s"] = time.perf_counter() - started - times["generate_s"]
    times["total_s"] = time.perf_counter() - started
    size = sum(path.stat().st_size for path in folder.iterdir())
    return {
        **{name: round(value, 1) for name, value in times.items()},
        "interactions_after_preprocessing": len(data),
        "users": data.num_users,
        "items": data.num_items,
        "train": len(split.train),
        "cache_bytes": size,
        "peak_rss_gib": round(peak_rss_gib(), 2),
    }


def run_load(args: argparse.Namespace) -> dict:
    from lightning_divrec.data.cache import load_or_build

    started = time.perf_counter()
    prepared, reused = load_or_build(data_config(args))
    elapsed = time.perf_counter() - started
    if not reused:
        raise RuntimeError("the load phase rebuilt the dataset instead of reading the cache entry")
    return {"load_s": round(elapsed, 1), "interactions": len(prepared.interactions), "peak_rss_gib": round(peak_rss_gib(), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--interactions", type=int, default=20_000_000)
    parser.add_argument("--duplicates", default="first", help="data.duplicates policy (default first)")
    parser.add_argument("--min-user-interactions", type=int, default=3)
    parser.add_argument("--min-item-interactions", type=int, default=3)
    parser.add_argument("--split", default="loo")
    parser.add_argument("--cache-dir", default="/tmp/divrec-data-scale")
    parser.add_argument("--keep-cache", action="store_true", help="do not empty the cache folder first")
    parser.add_argument("--phase", choices=["build", "load"], help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.phase is not None:
        result = run_build(args) if args.phase == "build" else run_load(args)
        sys.stdout.write(json.dumps(result) + "\n")
        return

    if not args.keep_cache:
        shutil.rmtree(Path(args.cache_dir) / "prepared", ignore_errors=True)
    report = {"python": platform.python_version(), "argv": sys.argv[1:]}
    for phase in ("build", "load"):
        child = subprocess.run(
            [sys.executable, __file__, *sys.argv[1:], "--phase", phase], check=True, stdout=subprocess.PIPE, text=True
        )
        report[phase] = json.loads(child.stdout.strip().splitlines()[-1])
    sys.stdout.write(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
