"""``RecDataModule``: one data module shared by every model.

Legend for shapes: B batch, U users, I items, C categories, E edges.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any, Iterator

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from lightning_divrec.data.cache import load_or_build
from lightning_divrec.data.interactions import Interactions
from lightning_divrec.data.neighbors import link_neighbor_loader
from lightning_divrec.data.prepare import build_prepared
from lightning_divrec.data.resumable import ResumableBatchSampler, ResumableDataLoader
from lightning_divrec.data.sampling import NegativeSampler
from lightning_divrec.data.sequences import SequenceData, build_sequence_data
from lightning_divrec.data.sources.registry import source_files
from lightning_divrec.data.splits import Split

log = logging.getLogger(__name__)


class CSR:
    """Per-user item lists in compressed sparse row form (numpy, on the CPU)."""

    def __init__(self, users: np.ndarray, items: np.ndarray, num_users: int):
        order = np.lexsort((items, users))
        self.indices = items[order].astype(np.int64)
        self.indptr = np.zeros(num_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(users, minlength=num_users), out=self.indptr[1:])

    def row_lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    def gather(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(batch_position, item)`` pairs of the given rows, for building [B, I] masks."""
        starts = self.indptr[rows]
        lengths = self.indptr[rows + 1] - starts
        batch_position = np.repeat(np.arange(len(rows)), lengths)
        offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        return batch_position, self.indices[np.repeat(starts, lengths) + offsets]


@dataclass
class EvalStage:
    """Users, held-out items and excluded items of one evaluation stage."""

    users: np.ndarray
    """[U_eval] users with at least one held-out item."""
    targets: CSR
    """Held-out items per user."""
    exclude: CSR
    """Items removed from each user's ranking: history minus that user's targets."""


class TrainTriples(Dataset):
    """(user, positive, negative) triples, one per training interaction.

    Negatives are drawn when a batch is fetched (``__getitems__``). A batch
    from ``ResumableBatchSampler`` carries a seed, so its negatives depend only
    on the batch's coordinates (seed, epoch, rank, position) and a resumed run
    draws the same ones; plain index lists draw from torch's global generator.
    """

    def __init__(self, users: torch.Tensor, items: torch.Tensor, sampler: NegativeSampler):
        self.users = users
        self.items = items
        self.sampler = sampler

    def __len__(self) -> int:
        return len(self.users)

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        index = torch.as_tensor(indices, dtype=torch.long)
        users = self.users[index]
        seed = getattr(indices, "seed", None)
        generator = None if seed is None else torch.Generator().manual_seed(seed)
        negatives = self.sampler.sample(users, generator=generator)
        return {"users": users, "positives": self.items[index], "negatives": negatives}

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        batch = self.__getitems__([index])
        return {key: value[0] for key, value in batch.items()}


class EvalUsers(Dataset):
    """Users of one evaluation stage; a batch carries its target and exclusion pairs."""

    def __init__(self, stage: EvalStage):
        self.stage = stage

    def __len__(self) -> int:
        return len(self.stage.users)

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        users = self.stage.users[np.asarray(indices, dtype=np.int64)]
        target_rows, target_items = self.stage.targets.gather(users)
        exclude_rows, exclude_items = self.stage.exclude.gather(users)
        return {
            "users": torch.from_numpy(users),
            "target_rows": torch.from_numpy(target_rows),
            "target_items": torch.from_numpy(target_items),
            "exclude_rows": torch.from_numpy(exclude_rows),
            "exclude_items": torch.from_numpy(exclude_items),
        }


class ShardSampler(Sampler[int]):
    """Rank ``r`` of ``W`` gets indices ``r, r+W, r+2W, ...``: no padding, so no user twice.

    ``torch.utils.data.DistributedSampler`` pads every rank to the same length
    by repeating indices, which counts some users twice in evaluation.
    """

    def __init__(self, size: int, rank: int, world_size: int):
        self.size, self.rank, self.world_size = size, rank, world_size

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.size, self.world_size))

    def __len__(self) -> int:
        return len(range(self.rank, self.size, self.world_size))


def per_device_batch_size(global_batch: int, world_size: int, accumulate: int) -> int:
    """Return global_batch / (world_size * accumulate); raise when it is not a whole positive number."""
    share = world_size * accumulate
    if global_batch % share or global_batch < share:
        raise ValueError(
            f"data.batch_size={global_batch} is the global batch and must be a multiple of processes "
            f"({world_size}) x trainer.accumulate_grad_batches ({accumulate}) = {share}; "
            f"use for example data.batch_size={max(1, round(global_batch / share)) * share}"
        )
    return global_batch // share


def _keep_batch(batch: Any) -> Any:
    """Collate for datasets whose ``__getitems__`` already returns a batch."""
    return batch


class RecDataModule(L.LightningDataModule):
    """Loads, splits and serves one recommendation dataset to every model.

    After ``setup`` it exposes ``num_users``, ``num_items``, ``train_edges``
    ([2, E] user -> item), ``train_history`` (each user's training items, a
    ``CSR``), ``item_popularity`` ([I] training users per item),
    ``item_interaction_counts`` ([I] training interactions per item),
    ``item_categories`` ([I, C] bool), ``interactions`` with the original ids,
    and ``stages``: the users, targets and exclusions of ``val`` and ``test``.
    ``loaded_from_cache`` is True when ``setup`` read a prepared dataset
    written by an earlier run or by ``prepare_data``.

    Args:
        config: the ``data`` group (``lightning_divrec.config.DataConfig``).
        seed: seed of the training shuffle and of each training batch's negatives.
    """

    def __init__(self, config: Any, seed: int = 0):
        super().__init__()
        self.config = config
        self.seed = seed
        self.interactions: Interactions | None = None
        self.split: Split | None = None
        self.loaded_from_cache = False
        self.sequence_data: SequenceData | None = None
        """Set by ``use_sequence_batches``; then training batches are item sequences."""
        self.link_neighbor_options: dict | None = None
        """Set by ``use_link_neighbor_batches``; then training batches are sampled subgraphs."""

    def prepare_data(self) -> None:
        """Find the data (downloading it when allowed) and, with ``data.cache``, write the prepared dataset.

        Lightning calls this on one process per node before ``setup`` runs on
        every process, so the cache entry is built once and read by all.
        """
        source_files(self.config, download=True)
        if self.config.cache:
            load_or_build(self.config)

    def setup(self, stage: str | None = None) -> None:
        if self.interactions is not None:
            return
        if self.config.cache:
            prepared, self.loaded_from_cache = load_or_build(self.config)
        else:
            prepared, self.loaded_from_cache = build_prepared(self.config), False
        self.interactions, self.split = prepared.interactions, prepared.split
        self.source_description = prepared.description
        self._build_tensors()
        split = self.split
        log.info(
            "data: %d users, %d items, %d train / %d valid / %d test interactions from %s",
            self.num_users, self.num_items, len(split.train), len(split.valid), len(split.test),
            self.source_description,
        )

    def _build_tensors(self) -> None:
        data, split = self.interactions, self.split
        self.num_users, self.num_items = data.num_users, data.num_items
        train_user = torch.from_numpy(data.user[split.train])
        train_item = torch.from_numpy(data.item[split.train])
        self.train_edges = torch.stack([train_user, train_item])
        self.train_history = CSR(data.user[split.train], data.item[split.train], self.num_users)
        self.item_categories = torch.from_numpy(data.item_categories)
        self.item_popularity = torch.bincount(torch.unique(self.train_edges, dim=1)[1], minlength=self.num_items)
        self.item_interaction_counts = torch.bincount(train_item, minlength=self.num_items)
        weights = None
        if self.config.negative_sampling == "popularity":
            weights = self.item_interaction_counts.double() ** self.config.negative_alpha
        self.negative_sampler = NegativeSampler(
            train_user, train_item, self.num_items, item_weights=weights, user_ids=data.user_ids
        )
        self.train_dataset = TrainTriples(train_user, train_item, self.negative_sampler)

        def pairs(index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return data.user[index], data.item[index]

        self.stages = {
            "val": self._eval_stage(pairs(split.valid), [pairs(split.train)]),
            "test": self._eval_stage(
                pairs(split.test),
                [pairs(split.train)] + ([pairs(split.valid)] if self.config.mask_valid_at_test else []),
            ),
        }

    def _eval_stage(self, targets: tuple[np.ndarray, np.ndarray], history: list[tuple]) -> EvalStage:
        target_users, target_items = targets
        history_users = np.concatenate([users for users, _ in history])
        history_items = np.concatenate([items for _, items in history])
        # Never remove a held-out target from the ranking, even when the same
        # item also occurs in the user's history (repeat consumption).
        keys = history_users * self.num_items + history_items
        keep = ~np.isin(keys, target_users * self.num_items + target_items)
        return EvalStage(
            users=np.unique(target_users),
            targets=CSR(target_users, target_items, self.num_users),
            exclude=CSR(history_users[keep], history_items[keep], self.num_users),
        )

    def fingerprint(self) -> str:
        """Return a SHA-256 of the data and its split; equal fingerprints mean identical evaluation data."""
        digest = hashlib.sha256(self.interactions.fingerprint().encode())
        for part in (self.split.train, self.split.valid, self.split.test):
            digest.update(np.ascontiguousarray(part).tobytes())
        return digest.hexdigest()

    def _distributed(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 0, 1
        return trainer.global_rank, trainer.world_size

    def per_device_batch_size(self, world_size: int, accumulate: int = 1) -> int:
        """Return the batch each process loads so that the global batch is ``data.batch_size``."""
        return per_device_batch_size(self.config.batch_size, world_size, accumulate)

    def train_dataloader(self) -> DataLoader:
        rank, world_size = self._distributed()
        accumulate = getattr(getattr(self, "trainer", None), "accumulate_grad_batches", 1)
        batch_size = self.per_device_batch_size(world_size, accumulate)
        if rank == 0:
            log.info(
                "global batch %d = %d process(es) x %d accumulation step(s) x %d per process",
                self.config.batch_size, world_size, accumulate, batch_size,
            )
        if self.link_neighbor_options is not None:
            # NOTE: this loader shuffles with torch's global generator and keeps
            # no position, so a mid-epoch resume starts a new shuffle of the epoch.
            return link_neighbor_loader(
                self.train_edges, self.num_users, self.num_items, batch_size=batch_size, rank=rank,
                world_size=world_size, num_workers=self.config.num_workers, **self.link_neighbor_options,
            )
        dataset = self.train_dataset if self.sequence_data is None else self.sequence_data.train
        return ResumableDataLoader(
            dataset,
            ResumableBatchSampler(len(dataset), batch_size, self.seed, rank, world_size),
            self._train_position,
            collate_fn=_keep_batch,
            num_workers=self.config.num_workers,
            persistent_workers=self.config.num_workers > 0,
        )

    def _train_position(self) -> tuple[int, int, bool]:
        """Return the epoch, the batches the trainer finished in it, and whether the epoch is over.

        Read when a checkpoint is written, which happens mid-epoch after the
        optimizer step of a batch or at the end of the epoch after validation.
        """
        loop = self.trainer.fit_loop
        progress = loop.epoch_loop.batch_progress
        batches_done = progress.current.processed
        return self.trainer.current_epoch, batches_done, progress.is_last_batch or batches_done >= loop.max_batches

    # ----- sequence batches (models that read histories as sequences) -----------------------

    def use_sequence_batches(self, max_length: int, windows: str = "all") -> SequenceData:
        """Switch ``train_dataloader`` to next-item windows of ``max_length`` and return the sequence data.

        Called by a model from ``attach_data``, which runs after ``setup`` and
        before Lightning requests the training loader. ``data.batch_size`` then
        counts windows. See ``lightning_divrec.data.sequences``.
        """
        self.sequence_data = build_sequence_data(self.interactions, self.split, max_length, windows)
        return self.sequence_data

    def use_link_neighbor_batches(self, num_neighbors: list[int], num_negatives: int = 1) -> None:
        """Switch ``train_dataloader`` to PyG ``LinkNeighborLoader`` batches over the training edges.

        Called by a model from ``attach_data``. ``data.batch_size`` then counts
        positive edges; each comes with ``num_negatives`` uniformly drawn items
        and the neighbourhood sampled with ``num_neighbors`` (one count per
        layer). See ``lightning_divrec.data.neighbors``.
        """
        self.link_neighbor_options = {"num_neighbors": list(num_neighbors), "num_negatives": num_negatives}

    def _eval_dataloader(self, stage: str) -> DataLoader:
        rank, world_size = self._distributed()
        dataset = EvalUsers(self.stages[stage])
        return DataLoader(
            dataset,
            batch_size=self.config.eval_batch_size,
            sampler=ShardSampler(len(dataset), rank, world_size),
            collate_fn=_keep_batch,
            num_workers=self.config.num_workers,
        )

    def all_users_dataloader(self, stage: str) -> DataLoader:
        """Return every user of ``stage`` in one process, for work done on rank zero alone."""
        dataset = EvalUsers(self.stages[stage])
        return DataLoader(dataset, batch_size=self.config.eval_batch_size, collate_fn=_keep_batch)

    def val_dataloader(self) -> DataLoader:
        return self._eval_dataloader("val")

    def test_dataloader(self) -> DataLoader:
        return self._eval_dataloader("test")
