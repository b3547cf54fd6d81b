"""Beyond-accuracy metrics: diversity inside a list, novelty, and exposure over the catalogue.

Legend: B users, K list length, C categories, D embedding dim, I items.
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


def self_information(item_popularity: torch.Tensor, num_users: int) -> torch.Tensor:
    """Return -log2 p(i) in bits per item, with p(i) the share of training users who interacted with i.

    Items no training user touched are counted as touched by one user, which
    keeps their novelty finite at log2(num_users). Shapes: [I] -> [I].
    """
    share = item_popularity.double().clamp_min(1) / max(num_users, 1)
    return -torch.log2(share)


def novelty(items: torch.Tensor, valid: torch.Tensor, item_self_information: torch.Tensor) -> torch.Tensor:
    """Return the mean self-information (bits) of the valid items of each list, [B, K] -> [B]."""
    values = item_self_information[items] * valid
    count = valid.sum(dim=1).double()
    return torch.where(count > 0, values.sum(dim=1) / count.clamp_min(1), torch.full_like(count, float("nan")))


def exposure_counts(items: torch.Tensor, valid: torch.Tensor, num_items: int) -> torch.Tensor:
    """Return how often each item appears in the valid part of the lists, [B, K] -> [I] int64."""
    return torch.bincount(items[valid], minlength=num_items)


def catalog_coverage(counts: torch.Tensor) -> torch.Tensor:
    """Return the share of the catalogue recommended at least once."""
    return (counts > 0).double().mean()


def gini_index(counts: torch.Tensor) -> torch.Tensor:
    """Return the Gini index of exposure: 0 when every item is shown equally, near 1 when one item takes all.

    G = sum_i (2i - n - 1) x_(i) / (n sum x) over counts sorted ascending, i = 1..n.
    NaN when nothing was recommended.
    """
    x = torch.sort(counts.double()).values
    n = x.numel()
    weights = 2 * torch.arange(1, n + 1, device=x.device, dtype=torch.float64) - n - 1
    total = x.sum()
    if total == 0:
        return torch.tensor(float("nan"), dtype=torch.float64, device=x.device)
    return (weights * x).sum() / (n * total)


def shannon_entropy(counts: torch.Tensor) -> torch.Tensor:
    """Return the Shannon entropy in bits of the exposure distribution; 0 log 0 counts as 0."""
    total = counts.sum()
    if total == 0:
        return torch.tensor(float("nan"), dtype=torch.float64, device=counts.device)
    p = counts.double() / total
    return -(torch.where(p > 0, p * torch.log2(p), torch.zeros_like(p))).sum()
