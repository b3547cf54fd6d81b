"""The in-memory dataset: implicit interactions with contiguous ids and item side information.

Legend for shapes: N interactions, U users, I items, C categories.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lightning_divrec.data.sources.common import DataFormatError


@dataclass
class Interactions:
    """Interactions whose users and items are numbered ``0..U-1`` and ``0..I-1``.

    ``user_ids[u]`` and ``item_ids[i]`` give back the ids of the source files,
    so every output can be reported in the user's own ids.
    """

    user: np.ndarray
    """[N] int64 contiguous user index."""
    item: np.ndarray
    """[N] int64 contiguous item index."""
    rating: np.ndarray
    """[N] float64 rating as given in the source."""
    timestamp: np.ndarray
    """[N] int64 Unix time in seconds."""
    user_ids: np.ndarray
    """[U] original user id of each index."""
    item_ids: np.ndarray
    """[I] original item id of each index."""
    item_categories: np.ndarray
    """[I, C] bool multi-hot categories (MovieLens genres)."""
    category_names: list[str]
    """[C] category names, column order of ``item_categories``."""
    item_titles: list[str]
    """[I] item text, empty where the source has none."""

    @property
    def num_users(self) -> int:
        return len(self.user_ids)

    @property
    def num_items(self) -> int:
        return len(self.item_ids)

    def __len__(self) -> int:
        return len(self.user)

    def fingerprint(self) -> str:
        """Return a SHA-256 over ids, items and timestamps, to check that a checkpoint's data is unchanged."""
        digest = hashlib.sha256()
        for array in (self.user, self.item, self.timestamp, self.user_ids, self.item_ids):
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()


def build_interactions(
    ratings: pd.DataFrame,
    items: pd.DataFrame | None,
    source: str,
    rating_threshold: float | None = None,
) -> Interactions:
    """Number users and items, attach categories and titles, and apply the rating threshold.

    ``ratings`` has columns ``user, item, rating, timestamp``; ``items`` has
    ``item, title, categories`` (a list of names per row). The catalogue is the
    set of items that keep at least one interaction.
    """
    missing = [column for column in ("user", "item", "rating", "timestamp") if column not in ratings]
    if missing:
        raise DataFormatError(f"{source}: interaction table lacks column(s) {', '.join(missing)}")
    if rating_threshold is not None:
        ratings = ratings[ratings["rating"] >= rating_threshold]
    if ratings.empty:
        raise DataFormatError(
            f"{source}: no interactions left"
            + (f" after data.rating_threshold={rating_threshold}; lower it" if rating_threshold is not None else "")
        )

    user_ids, user_index = np.unique(_id_array(ratings["user"]), return_inverse=True)
    item_ids, item_index = np.unique(_id_array(ratings["item"]), return_inverse=True)

    category_names: list[str] = []
    categories = np.zeros((len(item_ids), 0), dtype=bool)
    titles = [""] * len(item_ids)
    if items is not None:
        duplicated = items["item"].duplicated()
        if duplicated.any():
            row = int(np.flatnonzero(duplicated.to_numpy())[0])
            raise DataFormatError(f"{source}: item table row {row + 1} repeats item id {items['item'].iloc[row]}")
        category_names = sorted({name for names in items["categories"] for name in names})
        column_of = {name: column for column, name in enumerate(category_names)}
        categories = np.zeros((len(item_ids), len(category_names)), dtype=bool)
        table_ids = _id_array(items["item"])
        if table_ids.dtype.kind != item_ids.dtype.kind:
            table_ids, item_keys = table_ids.astype(str), item_ids.astype(str)
        else:
            item_keys = item_ids
        # item_keys is sorted (np.unique), so a binary search finds each table row's index.
        slot = np.searchsorted(item_keys, table_ids).clip(max=len(item_keys) - 1)  # [rows of items]
        known = item_keys[slot] == table_ids
        rows = slot[known]
        title_array = np.asarray(items["title"].to_numpy(), dtype=object)[known]
        for row, title in zip(rows.tolist(), title_array.tolist()):
            titles[row] = str(title) if title is not None else ""
        names_per_row = [names for names, keep in zip(items["categories"], known) if keep]
        lengths = np.fromiter((len(names) for names in names_per_row), dtype=np.int64, count=len(names_per_row))
        columns = np.fromiter(
            (column_of[name] for names in names_per_row for name in names), dtype=np.int64, count=int(lengths.sum())
        )
        categories[np.repeat(rows, lengths), columns] = True

    return Interactions(
        user=user_index.astype(np.int64),
        item=item_index.astype(np.int64),
        rating=ratings["rating"].to_numpy(dtype=np.float64),
        timestamp=ratings["timestamp"].to_numpy(dtype=np.int64),
        user_ids=user_ids,
        item_ids=item_ids,
        item_categories=categories,
        category_names=category_names,
        item_titles=titles,
    )


def _id_array(values: pd.Series) -> np.ndarray:
    """Return ids as int64 or as a fixed-width unicode array; never as Python objects.

    Object arrays would hash and cache as memory addresses, so string ids are
    stored as NumPy unicode.
    """
    array = values.to_numpy()
    if array.dtype.kind in "iu":
        return array.astype(np.int64, copy=False)
    if array.dtype.kind in "OTSU":
        return array.astype(str)
    return array
