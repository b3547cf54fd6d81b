"""Reader for RecBole atomic files (``.inter``, ``.item``).

An atomic file is UTF-8, tab-separated, with a header of ``name:type`` fields,
for example ``user_id:token	item_id:token	rating:float	timestamp:float``.
``token_seq`` fields hold space-separated tokens (RecBole's ml-100k ``class``
column lists genres this way).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lightning_divrec.data.sources.common import DataFormatError, parse_numeric_column

INTER_COLUMNS = {"user": "user_id", "item": "item_id", "rating": "rating", "timestamp": "timestamp"}
ITEM_COLUMNS = {"item": "item_id", "title": "movie_title", "categories": "class"}


def read_atomic_table(path: str | Path) -> pd.DataFrame:
    """Read an atomic file into string columns named without their ``:type`` suffix."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    frame = pd.read_csv(
        path, sep="\t", dtype=str, keep_default_na=False, encoding="utf-8", quoting=3, engine="c"
    )
    renamed = {}
    for header in frame.columns:
        name, _, kind = header.partition(":")
        if kind not in ("token", "token_seq", "float", "float_seq"):
            raise DataFormatError(
                f"{path}: header field {header!r} is not of the form name:type with type "
                "token, token_seq, float or float_seq"
            )
        renamed[header] = name
    return frame.rename(columns=renamed)


def read_atomic_interactions(path: str | Path) -> pd.DataFrame:
    """Read a ``.inter`` file into ``user, item, rating, timestamp`` columns."""
    path = Path(path)
    frame = read_atomic_table(path)
    _require_columns(frame, path, INTER_COLUMNS.values())
    return pd.DataFrame(
        {
            ours: parse_numeric_column(frame[theirs], path, theirs, integer=ours != "rating")
            for ours, theirs in INTER_COLUMNS.items()
        }
    )


def read_atomic_items(path: str | Path) -> pd.DataFrame:
    """Read a ``.item`` file into ``item, title, categories`` columns."""
    path = Path(path)
    frame = read_atomic_table(path)
    _require_columns(frame, path, [ITEM_COLUMNS["item"]])
    titles = frame.get(ITEM_COLUMNS["title"], pd.Series([""] * len(frame)))
    classes = frame.get(ITEM_COLUMNS["categories"], pd.Series([""] * len(frame)))
    return pd.DataFrame(
        {
            "item": parse_numeric_column(frame[ITEM_COLUMNS["item"]], path, "item_id", integer=True),
            "title": titles.to_numpy(),
            "categories": [value.split() for value in classes],
        }
    )


def _require_columns(frame: pd.DataFrame, path: Path, required) -> None:
    missing = [column for column in required if column not in frame.columns]
    if missing:
        raise DataFormatError(
            f"{path}: missing column(s) {', '.join(missing)}; the header has "
            f"{', '.join(frame.columns)}"
        )
