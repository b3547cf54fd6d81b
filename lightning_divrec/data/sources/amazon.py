"""Reader for Amazon Reviews 2023 (McAuley Lab) through Hugging Face ``datasets``.

Contract: a review file (JSONL or Parquet) with ``user_id``, ``parent_asin``,
``rating`` and ``timestamp`` in Unix milliseconds, and an optional metadata
file with ``parent_asin``, ``title``, ``main_category`` and ``categories`` (a
list, often a path from broad to narrow). Items are identified by
``parent_asin``, so the colour and size variants of one product are one item.
An item's categories are its ``categories`` list, or its ``main_category``
when that list is empty; its text is the ``title``.

Local files are read with ``datasets.load_dataset("json"|"parquet", ...)``.
The hub copy is read only when the local files are missing and the config
allows downloads.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from lightning_divrec.data.sources.common import DataFormatError, parse_numeric_column
from lightning_divrec.data.sources.tabular import infer_format, parse_id_column, split_categories

log = logging.getLogger(__name__)

HUB_REPOSITORY = "McAuley-Lab/Amazon-Reviews-2023"
REVIEW_COLUMNS = ["user_id", "parent_asin", "rating", "timestamp"]
METADATA_COLUMNS = ["parent_asin", "title", "main_category", "categories"]


def hub_files(category: str) -> tuple[str, str]:
    """Return the hub paths of one category's review and metadata JSONL files."""
    # NOTE: this layout of the hub repository (raw/review_categories, raw/meta_categories)
    # has not been read from the hub by any test, which run offline.
    base = f"hf://datasets/{HUB_REPOSITORY}/raw"
    return f"{base}/review_categories/{category}.jsonl", f"{base}/meta_categories/meta_{category}.jsonl"


def load_table(location: str, columns: list[str], cache_dir: str, optional: tuple[str, ...] = ()) -> pd.DataFrame:
    """Read ``columns``, and those of ``optional`` that exist, of one JSONL or Parquet file.

    ``location`` is a local path or an ``hf://`` address; ``datasets`` reads both.
    """
    import datasets

    kind = "parquet" if infer_format(Path(location), None) == "parquet" else "json"
    dataset = datasets.load_dataset(kind, data_files=location, split="train", cache_dir=cache_dir)
    missing = [column for column in columns if column not in dataset.column_names]
    if missing:
        raise DataFormatError(
            f"{location}: missing column(s) {', '.join(missing)}; the file has {', '.join(dataset.column_names)}. "
            "Is it an Amazon Reviews 2023 file?"
        )
    present = [column for column in optional if column in dataset.column_names]
    frame = dataset.select_columns(columns + present).to_pandas()
    if frame.empty:
        raise DataFormatError(f"{location} contains no rows")
    return frame


def read_amazon(folder: Path | None, config: Any, download: bool, cache_dir: str) -> tuple[pd.DataFrame, pd.DataFrame | None, list[str]]:
    """Return ``(interactions, items, locations)``; timestamps are converted to seconds."""
    hf_cache = str(Path(cache_dir).expanduser() / "huggingface")
    reviews = folder / config.reviews if folder is not None else None
    metadata = folder / config.metadata if folder is not None and config.metadata else None
    if reviews is not None and reviews.is_file():
        review_location, meta_location = str(reviews), str(metadata) if metadata is not None else None
        if metadata is not None and not metadata.is_file():
            raise FileNotFoundError(f"{metadata} not found; set data.amazon.metadata=null to read no item features")
    elif download and config.category:
        review_location, meta_location = hub_files(config.category)
        if not config.metadata:
            meta_location = None
        log.info("reading Amazon Reviews 2023 category %s from the Hugging Face hub", config.category)
    else:
        raise FileNotFoundError(
            f"Amazon Reviews 2023 review file {reviews or config.reviews} not found; pass data.path=<folder> "
            "and data.amazon.reviews=<file>, or data.amazon.category=<name> with data.download=true"
        )

    frame = load_table(review_location, REVIEW_COLUMNS, hf_cache)
    path = Path(review_location)
    milliseconds = parse_numeric_column(frame["timestamp"].astype(str), path, "timestamp", integer=True)
    interactions = pd.DataFrame(
        {
            "user": parse_id_column(frame["user_id"], path, "user_id").astype(str),
            "item": parse_id_column(frame["parent_asin"], path, "parent_asin").astype(str),
            "rating": parse_numeric_column(frame["rating"].astype(str), path, "rating"),
            "timestamp": milliseconds // 1000,
        }
    )
    locations = [review_location]
    if meta_location is None:
        return interactions, None, locations

    meta = load_table(meta_location, ["parent_asin", "title"], hf_cache, optional=("main_category", "categories"))
    main = meta["main_category"] if "main_category" in meta else pd.Series([None] * len(meta))
    lists = meta["categories"] if "categories" in meta else pd.Series([None] * len(meta))
    categories = []
    for path_names, main_name in zip(lists, main):
        names = split_categories(path_names, "|")
        if not names and isinstance(main_name, str) and main_name:
            names = [main_name]
        categories.append(names)
    items = pd.DataFrame(
        {
            "item": parse_id_column(meta["parent_asin"], Path(meta_location), "parent_asin").astype(str),
            "title": meta["title"].fillna("").astype(str).to_numpy(),
            "categories": categories,
        }
    )
    locations.append(meta_location)
    return interactions, items, locations

