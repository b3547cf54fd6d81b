"""Training batches that are a pure function of (seed, epoch, rank, batch position), so a run can resume mid-epoch.

The shuffle of epoch ``e`` comes from ``DistributedSampler`` (a permutation
seeded with ``seed + e``), and each batch carries its own seed, from which
the dataset draws that batch's negatives. Nothing in the data path reads a
global random generator, so the batches do not depend on how far the
``DataLoader`` (or its workers) fetched ahead. The only state that a
checkpoint needs is the epoch and the number of batches the trainer finished
in it.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Iterator

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, DistributedSampler

log = logging.getLogger(__name__)

NEGATIVES_STREAM = 0
"""Stream id of the seed that draws a batch's negatives."""

GLOBAL_RNG_STREAM = 1
"""Stream id of the seed that the global generators get before a training batch."""


def batch_seed(seed: int, epoch: int, rank: int, position: int, stream: int) -> int:
    """Return a 63-bit seed for one batch, mixed from its coordinates by NumPy's ``SeedSequence``.

    Different coordinates give unrelated seeds. A sum such as ``seed + position``
    would give batch 1 of one run the seed of batch 0 of the run seeded one higher.
    """
    words = np.random.SeedSequence([seed, epoch, rank, position, stream]).generate_state(2, np.uint32)
    return (int(words[0]) << 31) ^ int(words[1])


class BatchIndices(list):
    """Dataset indices of one training batch, with the seed that draws its random parts (negatives).

    A plain list with one attribute, so ``DataLoader`` passes it unchanged to
    ``Dataset.__getitems__``, also across worker processes.
    """

    def __init__(self, indices: list[int], seed: int):
        super().__init__(indices)
        self.seed = seed


class ResumableBatchSampler(BatchSampler):
    """Shuffled batches of one process that can start at any batch of an epoch.

    Epoch ``e`` is ``DistributedSampler``'s permutation for ``seed + e``, padded
    so that every process gets the same number of batches, and this process
    takes every ``world_size``-th index from ``rank`` on. Lightning sets the epoch
    through ``self.sampler.set_epoch``. ``resume_at`` makes the next iteration of
    that epoch skip the batches already trained.

    Args:
        size: number of training examples.
        batch_size: examples per batch on this process (the last batch may be smaller).
        seed: base seed of the shuffle and of each batch's seed.
        rank: this process's global rank.
        world_size: number of processes.
    """

    def __init__(self, size: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1):
        shuffle = DistributedSampler(range(size), num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
        super().__init__(shuffle, batch_size, drop_last=False)
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self._resume_epoch: int | None = None
        self._resume_position = 0

    @property
    def epoch(self) -> int:
        return self.sampler.epoch

    def resume_at(self, epoch: int, position: int) -> None:
        """Make the next iteration of ``epoch`` start at batch ``position`` (the number of batches already trained)."""
        if not 0 <= position <= len(self):
            raise ValueError(f"resume position {position} is outside the epoch's {len(self)} batches")
        self.sampler.set_epoch(epoch)
        self._resume_epoch, self._resume_position = epoch, position

    def __iter__(self) -> Iterator[BatchIndices]:
        epoch = self.epoch
        start = self._resume_position if self._resume_epoch == epoch else 0
        # The skip applies once: a later iteration of the same epoch (another
        # fit call) starts from its beginning again.
        self._resume_epoch, self._resume_position = None, 0
        indices = list(self.sampler)
        for position in range(start, len(self)):
            chunk = indices[position * self.batch_size : (position + 1) * self.batch_size]
            yield BatchIndices(chunk, batch_seed(self.seed, epoch, self.rank, position, NEGATIVES_STREAM))


class ResumableDataLoader(DataLoader):
    """A training ``DataLoader`` whose ``state_dict`` Lightning stores in each checkpoint and restores on resume.

    Lightning 2.6 saves the ``state_dict()`` of every training loader that has
    one under ``loops.fit_loop.combined_loader`` and calls ``load_state_dict``
    before the resumed epoch starts. The state is the trainer's position, read
    through ``position`` when the checkpoint is written, not the loader's own
    count of fetched batches, which runs ahead of training by the prefetched ones.

    Args:
        dataset: map-style dataset whose ``__getitems__`` accepts ``BatchIndices``.
        batch_sampler: the ``ResumableBatchSampler`` of this process.
        position: returns ``(epoch, batches finished in it, whether the epoch is over)``.
        **kwargs: further ``DataLoader`` arguments (``collate_fn``, ``num_workers``, ...).
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_sampler: ResumableBatchSampler,
        position: Callable[[], tuple[int, int, bool]],
        **kwargs: Any,
    ):
        # A generator of its own keeps iter() from drawing the workers' base
        # seed from torch's global generator.
        generator = torch.Generator().manual_seed(batch_sampler.seed)
        super().__init__(dataset, batch_sampler=batch_sampler, generator=generator, **kwargs)
        self.position = position

    def state_dict(self) -> dict[str, Any]:
        epoch, batches_done, epoch_finished = self.position()
        sampler = self.batch_sampler
        return {
            "epoch": epoch,
            "batches_done": batches_done,
            "epoch_finished": epoch_finished,
            "batches_per_epoch": len(sampler),
            "world_size": sampler.world_size,
            "seed": sampler.seed,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Position the sampler after the last batch that the checkpoint's run trained."""
        sampler = self.batch_sampler
        epoch, batches_done = int(state["epoch"]), int(state["batches_done"])
        if state["epoch_finished"]:
            sampler.resume_at(epoch + 1, 0)
            return
        saved = (state["batches_per_epoch"], state["world_size"], state["seed"])
        current = (len(sampler), sampler.world_size, sampler.seed)
        if saved != current:
            # The saved position counts batches of another shuffle or size, so
            # skipping it would train some examples twice and others never.
            log.warning(
                "the checkpoint stopped after batch %d of epoch %d with (batches per epoch, processes, seed) = %s, "
                "but this run has %s; epoch %d starts again from its first batch",
                batches_done, epoch, saved, current, epoch,
            )
            sampler.resume_at(epoch, 0)
            return
        sampler.resume_at(epoch, batches_done)
