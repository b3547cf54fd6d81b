"""Negative sampling (uniform or weighted) that never returns one of the user's training positives."""

from __future__ import annotations

from typing import Sequence

import torch

DENSE_TABLE_LIMIT = 64 * 2**20
"""Largest user x item table, in bytes (one bool per pair), that ``NegativeSampler`` keeps for O(1) lookups."""


class NegativeSampler:
    """Draw items from those a user has not interacted with in training.

    Without ``item_weights`` the draw is uniform over the user's non-positive
    items. With them, item ``i`` is drawn with probability proportional to
    ``item_weights[i]`` among the user's non-positive items, for example
    training interaction counts ^ alpha. Items of weight 0 are never drawn.

    Draws are vectorised rejection sampling: every rejected draw is redrawn
    until none is left, which keeps the distribution exactly proportional to
    the weights over the user's non-positive items. After ``max_rounds`` the few draws still
    rejected (users with nearly the whole catalogue) are filled by an exact
    draw from the complement, so sampling always terminates.

    Args:
        train_user: [N] user index of every training interaction.
        train_item: [N] item index of every training interaction.
        num_items: catalogue size I.
        max_rounds: rejection rounds before the exact fallback (default 20).
        item_weights: [I] non-negative sampling weights; None samples uniformly.
        user_ids: [U] original user ids, named in errors beside the index.

    Raises:
        ValueError: a user's training positives cover every item that can be
            drawn (the whole catalogue, or every item of positive weight), so
            no negative exists; the message names the user.
    """

    def __init__(
        self,
        train_user: torch.Tensor,
        train_item: torch.Tensor,
        num_items: int,
        max_rounds: int = 20,
        item_weights: torch.Tensor | None = None,
        user_ids: Sequence | None = None,
    ):
        self.num_items = num_items
        self.max_rounds = max_rounds
        # Sorted unique keys user * I + item give an O(log N) membership test.
        self.positive_keys = torch.unique(train_user.long() * num_items + train_item.long())
        # Where it fits in DENSE_TABLE_LIMIT bytes, a bool table over every (user, item) pair gives an O(1) test.
        self.dense_table: torch.Tensor | None = None
        table_size = (int(train_user.max()) + 1) * num_items if len(train_user) else 0
        if 0 < table_size <= DENSE_TABLE_LIMIT:
            self.dense_table = torch.zeros(table_size, dtype=torch.bool)
            self.dense_table[self.positive_keys] = True
        self.weights = None
        self.cumulative = None
        drawable = torch.ones(num_items, dtype=torch.bool)
        if item_weights is not None:
            weights = torch.as_tensor(item_weights, dtype=torch.float64)
            if weights.shape != (num_items,) or not torch.all(torch.isfinite(weights)) or torch.any(weights < 0):
                raise ValueError(f"item_weights must be {num_items} finite non-negative numbers")
            if not torch.any(weights > 0):
                raise ValueError("item_weights are all zero, so no item can be drawn")
            self.weights = weights
            self.cumulative = torch.cumsum(weights, dim=0)  # [I]
            drawable = weights > 0
        # A user is saturated when its positives include every drawable item.
        positive_items = self.positive_keys % num_items
        users, counts = torch.unique(self.positive_keys[drawable[positive_items]] // num_items, return_counts=True)
        saturated = users[counts >= int(drawable.sum())]
        if len(saturated):
            user = int(saturated[0])
            original = user_ids[user] if user_ids is not None else None
            original = original.item() if hasattr(original, "item") else original
            named = f" (user id {original!r})" if user_ids is not None else ""
            scope = f"all {num_items} items" if item_weights is None else f"all {int(drawable.sum())} items of positive weight"
            raise ValueError(
                f"user index {user} has interacted with {scope}{named}, "
                "so no negative item can be drawn; remove such users before training "
                "(for example with data.min_item_interactions) or sample uniformly"
            )

    def is_positive(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Return a bool mask, True where ``items[j]`` is a training positive of ``users[j]``."""
        keys = users.long() * self.num_items + items.long()
        if self.dense_table is not None:
            # Users after the last one with a training interaction have no positives.
            inside = keys < len(self.dense_table)
            return self.dense_table[keys.clamp(max=len(self.dense_table) - 1)] & inside
        slot = torch.searchsorted(self.positive_keys, keys).clamp_(max=len(self.positive_keys) - 1)
        return self.positive_keys[slot] == keys

    def sample(self, users: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Return one negative item per entry of ``users`` ([B] -> [B])."""
        negatives = self._draw(users.shape[0], generator)
        for _ in range(self.max_rounds):
            rejected = self.is_positive(users, negatives)
            if not rejected.any():
                return negatives
            negatives[rejected] = self._draw(int(rejected.sum()), generator)
        for slot in torch.nonzero(self.is_positive(users, negatives)).flatten().tolist():
            negatives[slot] = self._sample_from_complement(int(users[slot]), generator)
        return negatives

    def _draw(self, count: int, generator: torch.Generator | None) -> torch.Tensor:
        """Return ``count`` items drawn from the whole catalogue, uniformly or by weight."""
        if self.cumulative is None:
            return torch.randint(0, self.num_items, (count,), generator=generator)
        # Inverse CDF: the first item whose cumulative weight exceeds u. Items
        # of weight 0 share their predecessor's cumulative value, so no u selects them.
        uniform = torch.rand(count, dtype=torch.float64, generator=generator) * self.cumulative[-1]
        return torch.searchsorted(self.cumulative, uniform, right=True).clamp_(max=self.num_items - 1)

    def _sample_from_complement(self, user: int, generator: torch.Generator | None) -> torch.Tensor:
        start, end = torch.searchsorted(
            self.positive_keys, torch.tensor([user * self.num_items, (user + 1) * self.num_items])
        ).tolist()
        allowed = torch.ones(self.num_items, dtype=torch.bool)
        allowed[self.positive_keys[start:end] - user * self.num_items] = False
        if self.weights is not None:
            allowed &= self.weights > 0
        candidates = torch.nonzero(allowed).flatten()
        if self.weights is not None:
            return candidates[torch.multinomial(self.weights[candidates], 1, generator=generator)][0]
        return candidates[torch.randint(0, len(candidates), (1,), generator=generator)][0]
