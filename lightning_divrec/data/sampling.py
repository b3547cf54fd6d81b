"""Uniform negative sampling that never returns one of the user's training positives."""

from __future__ import annotations

import torch


class NegativeSampler:
    """Draw items uniformly from those a user has not interacted with in training.

    Draws are vectorised rejection sampling: every rejected draw is redrawn
    until none is left, which keeps the distribution exactly uniform over the
    user's non-positive items. After ``max_rounds`` the few draws still
    rejected (users with nearly the whole catalogue) are filled by an exact
    draw from the complement, so sampling always terminates.

    Args:
        train_user: [N] user index of every training interaction.
        train_item: [N] item index of every training interaction.
        num_items: catalogue size I.
        max_rounds: rejection rounds before the exact fallback (default 20).

    Raises:
        ValueError: a user's training positives cover the whole catalogue, so
            no negative exists; the message names the user index.
    """

    def __init__(self, train_user: torch.Tensor, train_item: torch.Tensor, num_items: int, max_rounds: int = 20):
        self.num_items = num_items
        self.max_rounds = max_rounds
        # Sorted unique keys user * I + item give an O(log N) membership test.
        self.positive_keys = torch.unique(train_user.long() * num_items + train_item.long())
        users, counts = torch.unique(self.positive_keys // num_items, return_counts=True)
        saturated = users[counts >= num_items]
        if len(saturated):
            raise ValueError(
                f"user index {int(saturated[0])} has interacted with all {num_items} items, "
                "so no negative item can be drawn; remove such users before training"
            )

    def is_positive(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Return a bool mask, True where ``items[j]`` is a training positive of ``users[j]``."""
        keys = users.long() * self.num_items + items.long()
        slot = torch.searchsorted(self.positive_keys, keys).clamp_(max=len(self.positive_keys) - 1)
        return self.positive_keys[slot] == keys

    def sample(self, users: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Return one negative item per entry of ``users`` ([B] -> [B])."""
        negatives = torch.randint(0, self.num_items, users.shape, generator=generator)
        for _ in range(self.max_rounds):
            rejected = self.is_positive(users, negatives)
            if not rejected.any():
                return negatives
            negatives[rejected] = torch.randint(0, self.num_items, (int(rejected.sum()),), generator=generator)
        for slot in torch.nonzero(self.is_positive(users, negatives)).flatten().tolist():
            negatives[slot] = self._sample_from_complement(int(users[slot]), generator)
        return negatives

    def _sample_from_complement(self, user: int, generator: torch.Generator | None) -> torch.Tensor:
        start, end = torch.searchsorted(
            self.positive_keys, torch.tensor([user * self.num_items, (user + 1) * self.num_items])
        ).tolist()
        allowed = torch.ones(self.num_items, dtype=torch.bool)
        allowed[self.positive_keys[start:end] - user * self.num_items] = False
        candidates = torch.nonzero(allowed).flatten()
        return candidates[torch.randint(0, len(candidates), (1,), generator=generator)][0]
