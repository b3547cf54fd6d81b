"""Diversity inside each list: pairwise dissimilarity and category coverage.

Legend: B users, K list length, C categories, D embedding dim.
"""

from __future__ import annotations

import torch


def jaccard_similarity(categories: torch.Tensor) -> torch.Tensor:
    """Return pairwise Jaccard similarity of multi-hot category sets, [B, K, C] -> [B, K, K].

    Two items that both have no category count as identical (similarity 1),
    the usual convention for two empty sets.
    """
    sets = categories.double()
    intersection = sets @ sets.transpose(1, 2)
    sizes = sets.sum(dim=2)
    union = sizes.unsqueeze(2) + sizes.unsqueeze(1) - intersection
    return torch.where(union > 0, intersection / union.clamp_min(1), torch.ones_like(union))


def cosine_similarity(embeddings: torch.Tensor) -> torch.Tensor:
    """Return pairwise cosine similarity of item embeddings, [B, K, D] -> [B, K, K]."""
    unit = torch.nn.functional.normalize(embeddings.double(), dim=2)
    return unit @ unit.transpose(1, 2)


def intra_list_diversity(similarity: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Return ILD: the mean of (1 - similarity) over unordered pairs of valid list items.

    Each pair i < j counts once, self-pairs never, so orthogonal items give 1.
    A list with fewer than 2 valid items has no pair and gets NaN (the metric
    wrapper skips it).

    Shapes: similarity [B, K, K], valid [B, K] -> [B].
    """
    k = similarity.shape[1]
    upper = torch.triu(torch.ones(k, k, dtype=torch.bool, device=similarity.device), diagonal=1)
    pairs = upper & valid.unsqueeze(2) & valid.unsqueeze(1)
    distance = ((1 - similarity) * pairs).sum(dim=(1, 2))
    count = pairs.sum(dim=(1, 2)).double()
    return torch.where(count > 0, distance / count.clamp_min(1), torch.full_like(distance, float("nan")))


def category_coverage(item_categories: torch.Tensor, items: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Return the share of all C categories that the valid items of each list cover.

    Shapes: item_categories [I, C] bool, items [B, K], valid [B, K] -> [B].
    """
    covered = (item_categories[items] & valid.unsqueeze(2)).any(dim=1)  # [B, C]
    return covered.double().mean(dim=1)
