"""Seeded synthetic interactions with power-law item popularity, categories, times and texts.

Shapes: N interactions, U users, I items, C categories.

The generator is vectorised with NumPy and has no per-user loop. Every user gets at least one interaction; the rest are
spread over users with a log-normal activity. Items are drawn with probability
proportional to ``rank^-a`` over a shuffled item order, so item 1 is not
always the most popular. Repeated (user, item) pairs occur, as in real logs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

TIME_START = 1_500_000_000
"""Unix time (2017-07-14) of the earliest generated interaction."""

TIME_SPAN = 3 * 365 * 24 * 3600
"""Generated interactions spread uniformly over three years."""

WORDS = (
    "red", "quiet", "rapid", "classic", "modern", "small", "deluxe", "vintage", "bright", "soft",
    "portable", "organic", "smart", "heavy", "light", "golden", "wooden", "silent", "daily", "wild",
)


def generate(config: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return ``(interactions, items)`` frames in the builder's column names.

    Users are numbered 1..U and items 1..I, like MovieLens ids.
    """
    num_users, num_items, total = config.num_users, config.num_items, config.num_interactions
    if min(num_users, num_items, config.num_categories) < 1 or total < num_users:
        raise ValueError(
            f"data.synthetic needs num_users, num_items and num_categories >= 1 and num_interactions >= num_users, "
            f"got {num_users}, {num_items}, {config.num_categories} and {total}"
        )
    rng = np.random.default_rng(config.seed)

    # Item popularity: p(rank r) ~ r^-a, with ranks assigned to a random item order.
    weights = np.arange(1, num_items + 1, dtype=np.float64) ** -config.popularity_exponent
    popularity = np.empty(num_items)
    popularity[rng.permutation(num_items)] = weights / weights.sum()

    # User activity: one interaction each, the remaining N - U spread log-normally.
    activity = rng.lognormal(mean=0.0, sigma=1.0, size=num_users)
    extra = rng.multinomial(total - num_users, activity / activity.sum())
    counts = 1 + extra  # [U]
    user = np.repeat(np.arange(1, num_users + 1, dtype=np.int64), counts)  # [N]
    item = rng.choice(num_items, size=total, p=popularity).astype(np.int64) + 1  # [N]
    rating = rng.integers(1, 6, size=total).astype(np.float64)
    timestamp = TIME_START + rng.integers(0, TIME_SPAN, size=total, dtype=np.int64)
    interactions = pd.DataFrame({"user": user, "item": item, "rating": rating, "timestamp": timestamp})

    category_names = [f"category-{index:03d}" for index in range(config.num_categories)]
    per_item = rng.integers(1, min(3, config.num_categories) + 1, size=num_items)
    first = rng.integers(0, config.num_categories, size=num_items)
    categories = [
        [category_names[(start + step) % config.num_categories] for step in range(size)]
        for start, size in zip(first.tolist(), per_item.tolist())
    ]
    adjectives = rng.integers(0, len(WORDS), size=(num_items, 2))
    titles = [
        f"{WORDS[a]} {WORDS[b]} {names[0]} item {index}"
        for index, ((a, b), names) in enumerate(zip(adjectives.tolist(), categories), start=1)
    ]
    items = pd.DataFrame({"item": np.arange(1, num_items + 1, dtype=np.int64), "title": titles, "categories": categories})
    return interactions, items
