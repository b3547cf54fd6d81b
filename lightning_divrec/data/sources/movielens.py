"""Readers for the original GroupLens MovieLens files.

MovieLens-100K (``u.data``, ``u.item``) and MovieLens-1M (``ratings.dat``,
``movies.dat``, also the format of ML-10M) text files are Latin-1 encoded: ``u.item`` has titles such as
``Caf\\xe9 Society``, so strict UTF-8 decoding fails on them. The 1M files use
the two-character separator ``::`` while titles may contain a single colon.
MovieLens 20M, 25M and 32M ship UTF-8 CSV files with a header
(``ratings.csv``: ``userId,movieId,rating,timestamp``; ``movies.csv``:
``movieId,title,genres``), where titles with commas are quoted.
Each reader returns a ``pandas.DataFrame`` with the columns the interaction
builder expects: ``user, item, rating, timestamp`` or ``item, title, categories``.
"""

from __future__ import annotations

from pathlib import Path

import io

import numpy as np
import pandas as pd

from lightning_divrec.data.sources.common import DataFormatError, parse_numeric_column

ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
)
"""Genre flag columns 6-24 of ``u.item``, in file order (from ``u.genre``)."""

ML100K_ITEM_FIELDS = 5 + len(ML100K_GENRES)
ENCODING = "latin-1"


def read_ml100k_ratings(path: str | Path) -> pd.DataFrame:
    """Read ``u.data``: tab-separated ``user item rating timestamp`` without a header."""
    return _read_ratings(Path(path), separator="\t")


def read_ml100k_items(path: str | Path) -> pd.DataFrame:
    """Read ``u.item``: ``|``-separated id, title, dates, URL and 19 genre flags."""
    path = Path(path)
    raw = _read_text_table(path, separator="|", num_fields=ML100K_ITEM_FIELDS)
    flags = raw.iloc[:, 5:].to_numpy()
    invalid = ~np.isin(flags, ["0", "1"])
    if invalid.any():
        row, column = np.argwhere(invalid)[0]
        raise DataFormatError(
            f"{path}, line {row + 1}, field {column + 6}: genre flag {flags[row, column]!r} "
            "is not 0 or 1; is this an original ml-100k u.item file?"
        )
    genre_lists = [[ML100K_GENRES[j] for j in np.flatnonzero(row == "1")] for row in flags]
    return pd.DataFrame(
        {
            "item": parse_numeric_column(raw[0], path, "movie id", integer=True),
            "title": raw[1].to_numpy(),
            "release_date": raw[2].replace("", None).to_numpy(),
            "categories": genre_lists,
        }
    )


def read_ml1m_ratings(path: str | Path) -> pd.DataFrame:
    """Read ``ratings.dat`` of ML-1M or ML-10M: ``UserID::MovieID::Rating::Timestamp``.

    Rating lines have no free text, so ``::`` is replaced by a tab and pandas'
    C parser reads the result. This avoids a Python split of each of ML-10M's
    10 million lines.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    text = path.read_bytes().decode(ENCODING).replace("::", "\t")
    names = ["user id", "item id", "rating", "timestamp"]
    try:
        raw = pd.read_csv(io.StringIO(text), sep="\t", header=None, names=names, dtype=str, keep_default_na=False)
    except pd.errors.ParserError as error:
        raise DataFormatError(f"{path}: expected 4 fields separated by '::' on every line ({error})") from error
    if raw.empty:
        raise DataFormatError(f"{path} contains no rows")
    return _numeric_ratings(raw, path, names)


def read_movielens_csv_ratings(path: str | Path) -> pd.DataFrame:
    """Read ``ratings.csv`` of ML-20M, ML-25M or ML-32M (header ``userId,movieId,rating,timestamp``)."""
    path = Path(path)
    names = ["userId", "movieId", "rating", "timestamp"]
    raw = _read_csv(path, names)
    return _numeric_ratings(raw, path, names)


def read_movielens_csv_movies(path: str | Path) -> pd.DataFrame:
    """Read ``movies.csv`` (``movieId,title,genres``); ``(no genres listed)`` gives no genre."""
    path = Path(path)
    raw = _read_csv(path, ["movieId", "title", "genres"])
    return pd.DataFrame(
        {
            "item": parse_numeric_column(raw["movieId"], path, "movieId", integer=True),
            "title": raw["title"].to_numpy(),
            "categories": [
                [] if genres in ("", "(no genres listed)") else genres.split("|") for genres in raw["genres"]
            ],
        }
    )


def _read_csv(path: Path, columns: list[str]) -> pd.DataFrame:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except (pd.errors.ParserError, UnicodeDecodeError) as error:
        raise DataFormatError(f"{path}: not a valid UTF-8 CSV file ({error})") from error
    missing = [column for column in columns if column not in raw.columns]
    if missing:
        raise DataFormatError(
            f"{path}: missing column(s) {', '.join(missing)} in the header {', '.join(raw.columns)}; "
            f"expected the GroupLens header {','.join(columns)}"
        )
    if raw.empty:
        raise DataFormatError(f"{path} contains no rows")
    return raw


def _numeric_ratings(raw: pd.DataFrame, path: Path, names: list[str]) -> pd.DataFrame:
    user, item, rating, timestamp = names
    return pd.DataFrame(
        {
            "user": parse_numeric_column(raw[user], path, user, integer=True),
            "item": parse_numeric_column(raw[item], path, item, integer=True),
            "rating": parse_numeric_column(raw[rating], path, rating),
            "timestamp": parse_numeric_column(raw[timestamp], path, timestamp, integer=True),
        }
    )


def read_ml1m_movies(path: str | Path) -> pd.DataFrame:
    """Read ``movies.dat``: ``MovieID::Title::Genre|Genre``; titles keep single colons."""
    path = Path(path)
    raw = _read_text_table(path, separator="::", num_fields=3)
    return pd.DataFrame(
        {
            "item": parse_numeric_column(raw[0], path, "MovieID", integer=True),
            "title": raw[1].to_numpy(),
            "categories": [genres.split("|") if genres else [] for genres in raw[2]],
        }
    )


def _read_ratings(path: Path, separator: str) -> pd.DataFrame:
    raw = _read_text_table(path, separator=separator, num_fields=4)
    return pd.DataFrame(
        {
            "user": parse_numeric_column(raw[0], path, "user id", integer=True),
            "item": parse_numeric_column(raw[1], path, "item id", integer=True),
            "rating": parse_numeric_column(raw[2], path, "rating"),
            "timestamp": parse_numeric_column(raw[3], path, "timestamp", integer=True),
        }
    )


def _read_text_table(path: Path, separator: str, num_fields: int) -> pd.DataFrame:
    """Split each line of a Latin-1 file on ``separator`` into exactly ``num_fields`` strings."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    lines = path.read_text(encoding=ENCODING).splitlines()
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        fields = line.split(separator)
        if len(fields) != num_fields:
            raise DataFormatError(
                f"{path}, line {number}: expected {num_fields} fields separated by "
                f"{separator!r}, found {len(fields)}: {line[:80]!r}"
            )
        rows.append(fields)
    if not rows:
        raise DataFormatError(f"{path} contains no rows")
    # NOTE: error messages count data rows from 1, which equals the line number
    # only when blank lines come last, as in the GroupLens files.
    return pd.DataFrame(rows, dtype=str)
