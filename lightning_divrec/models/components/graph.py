"""The bipartite user-item graph as row-normalised sparse adjacency matrices.

Full-graph propagation multiplies these matrices with the node embeddings
(``torch.sparse`` CSR), so no [E, D] message tensor is ever built: memory
grows with E + (U + I) * D, not with E * D.

Legend: U users, I items, C categories, E edges, D dim.
"""

from __future__ import annotations

import torch


class BipartiteGraph:
    """Training edges and the two aggregation matrices built from them.

    ``item_from_user`` [I, U] has entry 1 / deg(i) for every edge, so that
    ``item_from_user @ users`` is the mean of each item's user neighbours.
    ``user_from_item`` [U, I] has entry w_ui / sum_j w_uj, a weighted mean of
    each user's item neighbours. Without ``user_edge_weight`` every weight is
    1, which gives the plain mean. Nodes without neighbours get a zero row.

    Args:
        edge_index: [2, E] rows (user, item).
        num_users: U.
        num_items: I.
        user_edge_weight: [E] positive weight of each edge in its user's
            aggregation, or None.
    """

    def __init__(self, edge_index: torch.Tensor, num_users: int, num_items: int, user_edge_weight: torch.Tensor | None = None):
        self.edge_index = edge_index
        self.num_users, self.num_items = num_users, num_items
        users, items = edge_index
        ones = torch.ones(edge_index.shape[1], dtype=torch.float32, device=edge_index.device)
        weight = ones if user_edge_weight is None else user_edge_weight.float()
        self.user_from_item = _row_normalised(users, items, weight, (num_users, num_items))
        self.item_from_user = _row_normalised(items, users, ones, (num_items, num_users))

    def to(self, device: torch.device | str) -> BipartiteGraph:
        """Return this graph on ``device`` (self when it is already there)."""
        if self.edge_index.device == torch.device(device):
            return self
        moved = BipartiteGraph.__new__(BipartiteGraph)
        moved.num_users, moved.num_items = self.num_users, self.num_items
        moved.edge_index = self.edge_index.to(device)
        moved.user_from_item = self.user_from_item.to(device)
        moved.item_from_user = self.item_from_user.to(device)
        return moved


def _row_normalised(rows: torch.Tensor, columns: torch.Tensor, weight: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Return a CSR matrix with ``weight`` divided by its row sum at (rows, columns)."""
    row_sum = torch.zeros(size[0], dtype=weight.dtype, device=weight.device).index_add_(0, rows, weight)
    values = weight / row_sum[rows]
    matrix = torch.sparse_coo_tensor(torch.stack([rows, columns]), values, size).coalesce()
    return matrix.to_sparse_csr()


def category_rebalance_weights(
    edge_index: torch.Tensor,
    item_categories: torch.Tensor,
    num_users: int,
    strength: float,
    chunk_size: int = 1 << 20,
) -> torch.Tensor:
    """Return [E] weights that raise the share of a user's less frequent categories.

    For user u, p_u(c) is the share of category c among the categories of u's
    training items. Edge (u, i) gets f_ui, the mean of p_u(c) over the
    categories c of item i, and the weight f_ui ** -strength. With strength 0
    every weight is 1 (the plain mean). With strength 1, an item whose
    category fills a tenth of the history weighs ten times as much as an item
    whose category fills the whole history, so rare tastes count for more in
    the user's vector.
    Items without a category get f = 1 / C_u, the share of a category if u's
    history were spread evenly over its C_u categories.

    Shapes: edge_index [2, E], item_categories [I, C] bool -> [E] float32.
    """
    if strength == 0:
        return torch.ones(edge_index.shape[1], dtype=torch.float32, device=edge_index.device)
    users, items = edge_index
    categories = item_categories.float()  # [I, C]
    counts = torch.zeros(num_users, categories.shape[1], device=categories.device)  # [U, C]
    # Chunks bound the [chunk, C] temporaries on graphs with tens of millions of edges.
    for start in range(0, edge_index.shape[1], chunk_size):
        counts.index_add_(0, users[start : start + chunk_size], categories[items[start : start + chunk_size]])
    shares = counts / counts.sum(dim=1, keepdim=True).clamp(min=1)  # [U, C]
    spread = 1.0 / (counts > 0).sum(dim=1).clamp(min=1)  # [U]
    per_item = categories.sum(dim=1)  # [I]
    weights = torch.empty(edge_index.shape[1], dtype=torch.float32, device=edge_index.device)
    for start in range(0, edge_index.shape[1], chunk_size):
        user, item = users[start : start + chunk_size], items[start : start + chunk_size]
        overlap = (shares[user] * categories[item]).sum(dim=1)  # [chunk]
        frequency = torch.where(per_item[item] > 0, overlap / per_item[item].clamp(min=1), spread[user])
        weights[start : start + chunk_size] = frequency.clamp(min=1e-6).pow(-strength)
    return weights
