"""Mini-batch GraphSAGE training on sampled neighbourhoods with PyG's ``LinkNeighborLoader``.

Full-graph propagation (the default) needs no extra package. Neighbour
sampling needs one of PyG's sampling backends, ``pyg-lib`` or
``torch-sparse``; ``require_neighbor_backend`` names the install command when
neither is present.

Legend: B positive edges per batch, N negatives per positive, U users,
I items, E training edges, E' edges of a sampled subgraph.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

USER, ITEM = "user", "item"
RATES = (USER, "rates", ITEM)
RATED_BY = (ITEM, "rated_by", USER)


def neighbor_backend() -> str | None:
    """Return the installed neighbour-sampling backend (``pyg-lib`` or ``torch-sparse``), or None."""
    from torch_geometric import typing as pyg_typing

    if pyg_typing.WITH_PYG_LIB:
        return "pyg-lib"
    if pyg_typing.WITH_TORCH_SPARSE:
        return "torch-sparse"
    return None


def install_command() -> str:
    """Return the pip command that installs ``pyg-lib`` for this torch build (CPU or CUDA)."""
    version = torch.__version__.split("+")[0]
    cuda = torch.version.cuda
    variant = f"cu{cuda.replace('.', '')}" if cuda else "cpu"
    return f"pip install pyg-lib -f https://data.pyg.org/whl/torch-{version}+{variant}.html"


def require_neighbor_backend(option: str) -> None:
    """Raise ImportError naming ``option`` and the install command when no sampling backend is installed."""
    if neighbor_backend() is None:
        raise ImportError(
            f"{option} trains on sampled neighbourhoods with PyG's LinkNeighborLoader, which needs "
            f"'pyg-lib' or 'torch-sparse'; neither is installed. Install one with `{install_command()}` "
            f"(pick the wheel index of your torch and CUDA versions), or remove {option} to train on the full graph."
        )


def link_neighbor_loader(
    edges: torch.Tensor,
    num_users: int,
    num_items: int,
    num_neighbors: list[int],
    batch_size: int,
    num_negatives: int = 1,
    rank: int = 0,
    world_size: int = 1,
    num_workers: int = 0,
):
    """Return a ``LinkNeighborLoader`` over the training edges with ``num_negatives`` items per positive.

    The graph has each training edge twice, as ``user -rates-> item`` and
    ``item -rated_by-> user``, with the same edge order, so a sampled edge's
    ``e_id`` indexes ``edges`` whichever type it came from. Each process
    takes every ``world_size``-th edge as its seed edges. Negatives are drawn
    uniformly over the items by PyG (triplet mode); unlike the data module's
    sampler they may include a user's training items.

    Shapes: edges [2, E] rows (user, item).
    """
    require_neighbor_backend("model.num_neighbors")
    from torch_geometric.data import HeteroData
    from torch_geometric.loader import LinkNeighborLoader
    from torch_geometric.sampler import NegativeSampling

    graph = HeteroData()
    graph[USER].num_nodes = num_users
    graph[ITEM].num_nodes = num_items
    graph[RATES].edge_index = edges
    graph[RATED_BY].edge_index = edges.flip(0)
    seeds = edges[:, rank::world_size]
    return LinkNeighborLoader(
        graph,
        num_neighbors={RATES: list(num_neighbors), RATED_BY: list(num_neighbors)},
        edge_label_index=(RATES, seeds),
        neg_sampling=NegativeSampling("triplet", amount=num_negatives),
        batch_size=batch_size,
        shuffle=True,
        num_workers=num_workers,
    )


@dataclass
class SampledBatch:
    """One ``LinkNeighborLoader`` batch in the form the bipartite encoder takes.

    Node positions are local to the subgraph: ``users[k]`` is the global id of
    local user k, and ``edges`` index ``users`` and ``items``.
    """

    users: torch.Tensor
    """[U'] global user ids of the subgraph."""
    items: torch.Tensor
    """[I'] global item ids of the subgraph."""
    edges: torch.Tensor
    """[2, E'] local (user, item) edges; ``sampled_batch`` keeps one copy of an edge sampled in both directions."""
    edge_ids: torch.Tensor
    """[E'] position of each edge in the training edges."""
    seed_users: torch.Tensor
    """[B] local user of each positive edge."""
    positives: torch.Tensor
    """[B] local positive item."""
    negatives: torch.Tensor
    """[B, N] local negative items."""


def sampled_batch(batch) -> SampledBatch:
    """Convert a ``LinkNeighborLoader`` triplet batch (``HeteroData``) to a ``SampledBatch``.

    Edges sampled in both directions are merged; an edge sampled in both
    appears once, identified by its ``e_id``.
    """
    forward, backward = batch[RATES], batch[RATED_BY]
    edges = torch.cat([forward.edge_index, backward.edge_index.flip(0)], dim=1)  # [2, E'_f + E'_b]
    edge_ids = torch.cat([forward.e_id, backward.e_id])
    edge_ids, first = _first_occurrence(edge_ids)
    positives = batch[ITEM].dst_pos_index
    return SampledBatch(
        users=batch[USER].n_id,
        items=batch[ITEM].n_id,
        edges=edges[:, first],
        edge_ids=edge_ids,
        seed_users=batch[USER].src_index,
        positives=positives,
        negatives=batch[ITEM].dst_neg_index.reshape(len(positives), -1),
    )


def _first_occurrence(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return the distinct values (sorted) and the position of each one's first occurrence in ``values``."""
    distinct, inverse = torch.unique(values, return_inverse=True)
    positions = torch.arange(len(values), device=values.device)
    first = torch.full((len(distinct),), len(values), dtype=torch.long, device=values.device)
    first.scatter_reduce_(0, inverse, positions, reduce="amin")
    return distinct, first
