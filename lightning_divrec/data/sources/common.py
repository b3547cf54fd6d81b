"""Helpers shared by the dataset readers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


class DataFormatError(ValueError):
    """A dataset file that cannot be read; the message names the file, row and field."""


def parse_numeric_column(values: pd.Series, path: Path, column: str, integer: bool = False) -> np.ndarray:
    """Convert a column of strings to numbers, naming the first bad row on failure."""
    numbers = pd.to_numeric(values, errors="coerce")
    bad = numbers.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataFormatError(
            f"{path}, data row {row + 1}: column '{column}' has non-numeric value "
            f"{values.iloc[row]!r}; fix or remove that row"
        )
    if integer:
        if not np.all(np.equal(np.mod(numbers, 1), 0)):
            row = int(np.flatnonzero(np.mod(numbers, 1) != 0)[0])
            raise DataFormatError(
                f"{path}, data row {row + 1}: column '{column}' value {values.iloc[row]!r} is not an integer"
            )
        return numbers.to_numpy().astype(np.int64)
    return numbers.to_numpy().astype(np.float64)
