"""On-disk cache of prepared (preprocessed and split) datasets.

A prepared dataset is stored in ``<data.cache_dir>/prepared/<name>-<key>/``:

* ``dataset.npz``: uncompressed NumPy arrays, the interactions ``user``,
  ``item``, ``rating``, ``timestamp`` [N], the split indices, the id maps
  ``user_ids`` [U] and ``item_ids`` [I], ``item_categories`` [I, C], the
  category names and the item texts (UTF-8 bytes plus offsets);
* ``user_ids.tsv`` and ``item_ids.tsv``: ``index<TAB>original id`` per row,
  so that any output indexed by contiguous ids maps back to the source's ids;
* ``manifest.json``: the inputs of the key, the sizes and the creation time.

The key is a SHA-256 over the source files' resolved path, size and
modification time (``st_mtime_ns``), over the generator settings for the
synthetic source, and over every setting that changes the result (source
options, rating threshold, duplicate policy, k-core, split). File metadata
is used instead of a content hash because it costs one ``stat`` call while
hashing a 1 GB ratings file takes seconds on every run and on every process.
The price: an edit that keeps both size and mtime is not detected, while a
copy with a new mtime rebuilds the cache.

Each entry is written into a temporary folder beside its final place and
renamed into place once complete, so an interrupted or failed build leaves
no entry behind. When two processes build the same entry at once, the first
rename wins and the other process discards its copy.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lightning_divrec.data.interactions import Interactions
from lightning_divrec.data.prepare import PreparedData, build_prepared
from lightning_divrec.data.sources.registry import plain, source_files
from lightning_divrec.data.splits import Split

log = logging.getLogger(__name__)

CACHE_FORMAT = 1
"""Bumped whenever the stored layout or a preprocessing rule changes, so old entries are not read."""

KEY_SETTINGS = (
    "name", "rating_threshold", "duplicates", "min_user_interactions", "min_item_interactions",
    "split", "split_seed", "split_ratios", "split_cut_times", "cold_users",
)
"""``data`` keys that change the prepared dataset; batch sizes and sampling do not."""


def cache_key(config: Any) -> tuple[str, dict]:
    """Return ``(hex key, key inputs)`` of the prepared dataset described by ``config``."""
    settings = {key: plain_value(getattr(config, key)) for key in KEY_SETTINGS}
    if config.name == "tabular":
        settings["tabular"] = plain(config.tabular)
    if config.name == "amazon-2023":
        settings["amazon"] = plain(config.amazon)
    if config.name == "synthetic":
        settings["synthetic"] = plain(config.synthetic)
    files = source_files(config)
    sources = []
    for path in files or []:
        status = path.stat()
        sources.append({"path": str(path.resolve()), "size": status.st_size, "mtime_ns": status.st_mtime_ns})
    inputs = {"format": CACHE_FORMAT, "settings": settings, "files": sources}
    digest = hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()
    return digest, inputs


def plain_value(value: Any) -> Any:
    """Return lists as plain lists so that OmegaConf containers hash like Python ones."""
    if hasattr(value, "__iter__") and not isinstance(value, (str, bytes)):
        return [plain_value(item) for item in value]
    return value


def cache_folder(config: Any, key: str) -> Path:
    """Return the folder of the entry with ``key``."""
    return Path(config.cache_dir).expanduser() / "prepared" / f"{config.name}-{key[:24]}"


def load_or_build(config: Any) -> tuple[PreparedData, bool]:
    """Return the prepared dataset and whether it was read from the cache.

    Reads the entry of ``config``'s key when it exists; otherwise builds the
    dataset, writes the entry atomically and returns what was built.
    """
    key, inputs = cache_key(config)
    folder = cache_folder(config, key)
    if (folder / "manifest.json").is_file():
        started = time.perf_counter()
        prepared = load_prepared(folder)
        log.info("data: read the prepared dataset from %s in %.1f s", folder, time.perf_counter() - started)
        return prepared, True
    started = time.perf_counter()
    prepared = build_prepared(config)
    built = time.perf_counter()
    save_prepared(prepared, folder, inputs)
    log.info(
        "data: prepared the dataset in %.1f s and wrote %s in %.1f s",
        built - started, folder, time.perf_counter() - built,
    )
    return prepared, False


def save_prepared(prepared: PreparedData, folder: Path, inputs: dict) -> None:
    """Write ``prepared`` to ``folder`` through a temporary folder and one rename."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        data, split = prepared.interactions, prepared.split
        encoded = [title.encode("utf-8") for title in data.item_titles]
        offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
        np.cumsum([len(text) for text in encoded], out=offsets[1:])
        with open(scratch / "dataset.npz", "wb") as handle:
            np.savez(
                handle,
                user=data.user, item=data.item, rating=data.rating, timestamp=data.timestamp,
                user_ids=data.user_ids, item_ids=data.item_ids, item_categories=data.item_categories,
                category_names=np.asarray(data.category_names, dtype=str),
                titles=np.frombuffer(b"".join(encoded), dtype=np.uint8), title_offsets=offsets,
                train=split.train, valid=split.valid, test=split.test,
            )
        for name, ids in (("user_ids.tsv", data.user_ids), ("item_ids.tsv", data.item_ids)):
            pd.DataFrame({"index": np.arange(len(ids)), "original_id": ids}).to_csv(
                scratch / name, sep="\t", index=False
            )
        manifest = {
            **inputs,
            "origin": prepared.origin,
            "description": prepared.description,
            "interactions": len(data),
            "users": data.num_users,
            "items": data.num_items,
            "train": len(split.train),
            "valid": len(split.valid),
            "test": len(split.test),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (scratch / "manifest.json").write_text(json.dumps(manifest, indent=2))
        try:
            os.rename(scratch, folder)
        except OSError:
            if not (folder / "manifest.json").is_file():
                raise
            log.info("data: %s was written by another process meanwhile; keeping that copy", folder)
    finally:
        if scratch.exists():
            shutil.rmtree(scratch, ignore_errors=True)


def load_prepared(folder: Path) -> PreparedData:
    """Read an entry written by ``save_prepared``."""
    manifest = json.loads((folder / "manifest.json").read_text())
    with np.load(folder / "dataset.npz", allow_pickle=False) as arrays:
        blob = arrays["titles"].tobytes()
        offsets = arrays["title_offsets"]
        titles = [blob[start:end].decode("utf-8") for start, end in zip(offsets[:-1].tolist(), offsets[1:].tolist())]
        data = Interactions(
            user=arrays["user"],
            item=arrays["item"],
            rating=arrays["rating"],
            timestamp=arrays["timestamp"],
            user_ids=arrays["user_ids"],
            item_ids=arrays["item_ids"],
            item_categories=arrays["item_categories"],
            category_names=arrays["category_names"].tolist(),
            item_titles=titles,
        )
        split = Split(train=arrays["train"], valid=arrays["valid"], test=arrays["test"])
    return PreparedData(data, split, manifest["origin"], manifest["description"] + f" (cached in {folder})")
