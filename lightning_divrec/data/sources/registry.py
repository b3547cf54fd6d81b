"""Select the reader named by ``data.name`` and list the files it reads.

Every reader returns ``(interactions, items)`` frames in the builder's column
names (``user, item, rating, timestamp`` and ``item, title, categories``);
``items`` is None when the source has no item features.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from lightning_divrec.data.sources import amazon, movielens, recbole_atomic, synthetic, tabular
from lightning_divrec.data.sources.ml100k import locate_ml100k

MOVIELENS_FILES = {
    "ml-1m": ("ratings.dat", "movies.dat"),
    "ml-10m": ("ratings.dat", "movies.dat"),
    "ml-20m": ("ratings.csv", "movies.csv"),
    "ml-25m": ("ratings.csv", "movies.csv"),
    "ml-32m": ("ratings.csv", "movies.csv"),
}


@dataclass
class SourceTables:
    """Frames of one source and the place they came from."""

    interactions: pd.DataFrame
    items: pd.DataFrame | None
    origin: str
    """Main file (or generator) named in error messages about the interactions."""
    description: str
    """One line for the log: format and files."""


def source_files(config: Any, download: bool = False) -> list[Path] | None:
    """Return the local files the source reads, or None when it reads none (generator, hub).

    With ``download`` true, MovieLens-100K is downloaded here when no copy is
    found, which is why ``prepare_data`` calls this on one process only.
    """
    name = config.name
    if name == "ml-100k":
        found = locate_ml100k(config.path, download and config.download, config.cache_dir)
        return [found.ratings, found.items]
    if name in MOVIELENS_FILES:
        folder = _folder(config)
        return [_require_file(folder / file_name, config) for file_name in MOVIELENS_FILES[name]]
    if name == "recbole":
        return list(_recbole_files(_folder(config)))
    if name == "tabular":
        folder = Path(config.path).expanduser() if config.path else Path(".")
        files = [_require_file(folder / config.tabular.interactions_file, config)]
        if config.tabular.items_file:
            files.append(_require_file(folder / config.tabular.items_file, config))
        return files
    if name == "amazon-2023":
        if config.path is None:
            return None
        folder = Path(config.path).expanduser()
        reviews = folder / config.amazon.reviews
        if not reviews.is_file():
            return None  # the hub copy, or the reader's not-found error
        meta = [folder / config.amazon.metadata] if config.amazon.metadata else []
        return [reviews] + [path for path in meta if path.is_file()]
    if name == "synthetic":
        return None
    raise ValueError(f"data.name={name!r} is not a known source")


def read_source(config: Any) -> SourceTables:
    """Read the source named by ``data.name`` (never downloads, except the Amazon hub copy when allowed)."""
    name = config.name
    if name == "ml-100k":
        found = locate_ml100k(config.path, False, config.cache_dir)
        ratings, items = found.read()
        return SourceTables(ratings, items, str(found.ratings), f"{found.format} files {found.ratings}")
    if name in MOVIELENS_FILES:
        ratings_path, movies_path = source_files(config)
        if name in ("ml-1m", "ml-10m"):
            ratings, items = movielens.read_ml1m_ratings(ratings_path), movielens.read_ml1m_movies(movies_path)
        else:
            ratings = movielens.read_movielens_csv_ratings(ratings_path)
            items = movielens.read_movielens_csv_movies(movies_path)
        return SourceTables(ratings, items, str(ratings_path), f"{name} files {ratings_path}")
    if name == "recbole":
        inter_path, item_path = _recbole_files(_folder(config))
        ratings = recbole_atomic.read_atomic_interactions(inter_path)
        items = recbole_atomic.read_atomic_items(item_path) if item_path is not None else None
        return SourceTables(ratings, items, str(inter_path), f"RecBole atomic file {inter_path}")
    if name == "tabular":
        files = source_files(config)
        ratings = tabular.read_tabular_interactions(files[0], config.tabular)
        items = None
        if len(files) > 1:
            items = tabular.read_tabular_items(files[1], config.tabular, ratings["item"].to_numpy())
        return SourceTables(ratings, items, str(files[0]), f"table {files[0]}")
    if name == "amazon-2023":
        folder = Path(config.path).expanduser() if config.path else None
        ratings, items, locations = amazon.read_amazon(folder, config.amazon, config.download, config.cache_dir)
        return SourceTables(ratings, items, locations[0], f"Amazon Reviews 2023 {locations[0]}")
    if name == "synthetic":
        ratings, items = synthetic.generate(config.synthetic)
        return SourceTables(ratings, items, "synthetic generator", f"synthetic data {plain(config.synthetic)}")
    raise ValueError(f"data.name={name!r} is not a known source")


def plain(config: Any) -> dict:
    """Return a config group as a plain dict (for hashing and logging)."""
    if isinstance(config, DictConfig):
        return OmegaConf.to_container(config, resolve=True)
    if is_dataclass(config):
        return asdict(config)
    return dict(config)


def _folder(config: Any) -> Path:
    if config.path is None:
        raise FileNotFoundError(f"data.name={config.name} needs data.path=<folder with the dataset files>")
    folder = Path(config.path).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"data.path={config.path}: folder not found")
    return folder


def _require_file(path: Path, config: Any) -> Path:
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: data.name={config.name} reads this file; check data.path"
            + (" and data.tabular.interactions_file/items_file" if config.name == "tabular" else "")
        )
    return path


def _recbole_files(folder: Path) -> tuple[Path, Path | None]:
    inter = sorted(folder.glob("*.inter"))
    items = sorted(folder.glob("*.item"))
    if len(inter) != 1 or len(items) > 1:
        raise FileNotFoundError(
            f"{folder}: expected exactly one *.inter file and at most one *.item file, found "
            f"{[path.name for path in inter]} and {[path.name for path in items]}"
        )
    return inter[0], items[0] if items else None
