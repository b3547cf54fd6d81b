"""Generic reader for interaction logs in CSV, TSV, Parquet or JSONL with a column mapping.

Contract: the interaction file has one row per interaction, with a user id
column, an item id column and optionally a rating and a Unix-time column
(seconds). Ids may be integers or strings. The optional item file has one
row per item with an id column, a text column and a categories column that
contains either a list or one string split on a separator. The reader returns
frames in the builder's column names: ``user, item, rating, timestamp`` and
``item, title, categories``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pandas as pd

from lightning_divrec.data.sources.common import DataFormatError, parse_numeric_column

SUFFIX_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".json": "jsonl",
}


def infer_format(path: Path, format_name: Optional[str]) -> str:
    """Return ``format_name`` or the format implied by the file suffix; raise when neither is known."""
    if format_name is not None:
        return format_name
    suffixes = [suffix.lower() for suffix in path.suffixes if suffix.lower() != ".gz"]
    if suffixes and suffixes[-1] in SUFFIX_FORMATS:
        return SUFFIX_FORMATS[suffixes[-1]]
    raise DataFormatError(
        f"{path}: cannot infer the file format from the suffix {path.suffix!r}; "
        "set data.tabular.format to csv, tsv, parquet or jsonl"
    )


def read_table(path: Path, format_name: Optional[str], columns: list[str]) -> pd.DataFrame:
    """Read ``columns`` of one file; raise naming the file and the missing column."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; check data.path and the file name in the data config")
    kind = infer_format(path, format_name)
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            available = pq.read_schema(path).names
            _require(path, columns, available)
            return pd.read_parquet(path, columns=columns)
        if kind == "jsonl":
            frame = pd.read_json(path, lines=True, dtype=False)
        else:
            separator = "," if kind == "csv" else "\t"
            header = pd.read_csv(path, sep=separator, nrows=0).columns.tolist()
            _require(path, columns, header)
            # Strings keep ids such as "007" intact; numeric columns are parsed after.
            frame = pd.read_csv(path, sep=separator, usecols=columns, dtype=str, keep_default_na=False)
    except (ValueError, pd.errors.ParserError, json.JSONDecodeError) as error:
        if isinstance(error, DataFormatError):
            raise
        raise DataFormatError(f"{path}: not a valid {kind} file ({error})") from error
    _require(path, columns, frame.columns.tolist())
    if frame.empty:
        raise DataFormatError(f"{path} contains no rows")
    return frame[columns]


def _require(path: Path, columns: list[str], available: list[str]) -> None:
    missing = [column for column in columns if column not in available]
    if missing:
        raise DataFormatError(
            f"{path}: missing column(s) {', '.join(missing)}; the file has {', '.join(map(str, available))}. "
            "Map the columns with data.tabular.user/item/rating/timestamp (or item_id/title/categories)"
        )


def parse_id_column(values: pd.Series, path: Path, column: str) -> np.ndarray:
    """Return integer ids as int64 when every value is an integer, else the ids as strings.

    Empty or missing ids are an error naming the first such row.
    """
    if pd.api.types.is_integer_dtype(values.dtype):
        return values.to_numpy(dtype=np.int64)
    text = values.astype(str)
    empty = (values.isna() | (text.str.strip() == "")).to_numpy()
    if empty.any():
        row = int(np.flatnonzero(empty)[0])
        raise DataFormatError(f"{path}, data row {row + 1}: column '{column}' has an empty id; fill or remove that row")
    numbers = pd.to_numeric(text, errors="coerce")
    if numbers.notna().all() and np.all(np.mod(numbers, 1) == 0):
        return numbers.to_numpy().astype(np.int64)
    return text.to_numpy(dtype=str)


def read_tabular_interactions(path: Path, config: Any) -> pd.DataFrame:
    """Read the interaction file named by ``data.tabular`` into ``user, item, rating, timestamp``."""
    wanted = [config.user, config.item] + [name for name in (config.rating, config.timestamp) if name]
    frame = read_table(path, config.format, list(dict.fromkeys(wanted)))
    result = {
        "user": parse_id_column(frame[config.user], path, config.user),
        "item": parse_id_column(frame[config.item], path, config.item),
    }
    if config.rating:
        result["rating"] = parse_numeric_column(frame[config.rating], path, config.rating)
    else:
        result["rating"] = np.ones(len(frame))
    if config.timestamp:
        result["timestamp"] = parse_numeric_column(frame[config.timestamp], path, config.timestamp, integer=True)
    else:
        result["timestamp"] = np.arange(len(frame), dtype=np.int64)
    return pd.DataFrame(result)


def read_tabular_items(path: Path, config: Any, item_ids: np.ndarray) -> pd.DataFrame:
    """Read the item file into ``item, title, categories``; ids take the type of ``item_ids``."""
    wanted = [config.item_id] + [name for name in (config.title, config.categories) if name]
    frame = read_table(path, config.format, list(dict.fromkeys(wanted)))
    ids = parse_id_column(frame[config.item_id], path, config.item_id)
    ids = match_id_type(ids, item_ids, path, config.item_id)
    titles = frame[config.title].fillna("").astype(str).to_numpy() if config.title else np.full(len(frame), "")
    if config.categories:
        categories = [split_categories(value, config.category_separator) for value in frame[config.categories]]
    else:
        categories = [[] for _ in range(len(frame))]
    return pd.DataFrame({"item": ids, "title": titles, "categories": categories})


def match_id_type(ids: np.ndarray, reference: np.ndarray, path: Path, column: str) -> np.ndarray:
    """Cast item-file ids to the type of the interaction ids so that both tables join."""
    # A frame stores string ids as objects, so any non-integer kind counts as text.
    reference_is_text = reference.dtype.kind not in "iu"
    if reference_is_text:
        return ids.astype(str)
    if ids.dtype.kind in "iu":
        return ids
    raise DataFormatError(
        f"{path}: column '{column}' has non-integer ids (for example {ids[0]!r}) while the interaction "
        "file's item ids are integers; use the same ids in both files"
    )


def split_categories(value: Any, separator: str) -> list[str]:
    """Return the category names of one cell: a list as is, a string split on ``separator``."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, (list, tuple, np.ndarray)):
        return [str(name) for name in value if str(name)]
    return [name.strip() for name in str(value).split(separator) if name.strip()]
