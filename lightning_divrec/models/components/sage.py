"""GraphSAGE encoder of the bipartite user-item graph, a plain ``nn.Module``.

Legend: U users, I items, D embedding dim, E training edges, F item feature width.
"""

from __future__ import annotations

import torch
from torch import nn
from torch_geometric.nn import SAGEConv
from torch_geometric.nn.aggr import AttentionalAggregation

from lightning_divrec.models.components.graph import BipartiteGraph

AGGREGATIONS = ("mean", "max", "sum", "attention")
LAYER_COMBINATIONS = ("last", "mean", "weighted")


class BipartiteSAGE(nn.Module):
    """Learnable id embeddings refined by GraphSAGE layers in both directions.

    Each layer ``l`` updates both node types from the other one with
    ``SAGEConv`` (Hamilton et al., NeurIPS 2017):

        h_i^(l+1) = W_root h_i^(l) + W_neigh * aggr_{u in N(i)} h_u^(l)   (users -> items)
        h_u^(l+1) = W_root h_u^(l) + W_neigh * aggr_{i in N(u)} h_i^(l)   (items -> users)

    followed by the activation (ReLU by default) and dropout on all but the last layer. Messages must flow
    both ways: with only user -> item edges, user nodes would never be updated.

    The ``mean`` aggregation is a sparse matrix product with the row-normalised
    adjacency of a ``BipartiteGraph``, followed by the layer's two linear maps
    exactly as ``SAGEConv`` applies them. It never builds an [E, D] message
    tensor and allows weighted means (the category rebalancing of
    ``category_rebalance_weights``). ``max``, ``sum`` and ``attention``
    (a softmax over a learnt score of each neighbour, PyG's
    ``AttentionalAggregation``) pass messages along the edges.

    Item inputs are the id embedding plus, when ``item_feature_dim`` > 0, a
    linear projection of fixed item features (multi-hot categories, text
    embeddings) given to ``forward``.

    Args:
        num_users: U.
        num_items: I.
        dim: D, the width of embeddings and layers (default 64).
        num_layers: message-passing layers; 0 gives matrix factorisation (default 2).
        aggr: ``mean``, ``max``, ``sum`` or ``attention`` neighbour aggregation (default ``mean``).
        layer_combination: ``last`` uses the last layer; ``mean`` averages the
            id embeddings and every layer output; ``weighted`` takes a learnt
            softmax-weighted sum of them (default ``mean``).
        dropout: dropout probability between layers (default 0).
        activation: ``relu`` or ``none`` between layers (default ``relu``).
        identity_init: start both linear maps of every layer at the identity
            with zero bias, so that an untrained layer adds the neighbour mean
            to the node's own embedding (default False: PyG's initialisation).
        normalize: L2-normalise every layer output (``SAGEConv``'s option, default False).
        item_feature_dim: F, the width of the fixed item features (default 0: none).

    Shapes:
        forward(graph: ``BipartiteGraph`` or edge_index [2, E] with rows (user, item),
        item_features [I, F] or None) -> (users [U, D], items [I, D]);
        on a subgraph with ``node_ids`` (users [U'], items [I']) -> ([U', D], [I', D]).
    """

    def __init__(
        self,
        num_users: int,
        num_items: int,
        dim: int = 64,
        num_layers: int = 2,
        aggr: str = "mean",
        layer_combination: str = "mean",
        dropout: float = 0.0,
        activation: str = "relu",
        identity_init: bool = False,
        normalize: bool = False,
        item_feature_dim: int = 0,
    ):
        super().__init__()
        if aggr not in AGGREGATIONS:
            raise ValueError(f"aggr must be one of {', '.join(AGGREGATIONS)}, got {aggr!r}")
        if layer_combination not in LAYER_COMBINATIONS:
            raise ValueError(f"layer_combination must be one of {', '.join(LAYER_COMBINATIONS)}, got {layer_combination!r}")
        if activation not in ("relu", "none"):
            raise ValueError(f"activation must be 'relu' or 'none', got {activation!r}")
        self.num_users, self.num_items = num_users, num_items
        self.aggr = aggr
        self.layer_combination = layer_combination
        self.activation = activation
        self.dropout = nn.Dropout(dropout)
        self.user_embedding = nn.Embedding(num_users, dim)
        self.item_embedding = nn.Embedding(num_items, dim)
        nn.init.normal_(self.user_embedding.weight, std=0.1)
        nn.init.normal_(self.item_embedding.weight, std=0.1)
        self.item_feature_projection = nn.Linear(item_feature_dim, dim, bias=False) if item_feature_dim > 0 else None
        if self.item_feature_projection is not None:
            nn.init.normal_(self.item_feature_projection.weight, std=0.1 / item_feature_dim**0.5)
        self.to_item = nn.ModuleList(self._conv(dim, normalize) for _ in range(num_layers))
        self.to_user = nn.ModuleList(self._conv(dim, normalize) for _ in range(num_layers))
        self.layer_logits = nn.Parameter(torch.zeros(num_layers + 1)) if layer_combination == "weighted" else None
        if identity_init:
            for conv in list(self.to_item) + list(self.to_user):
                nn.init.eye_(conv.lin_l.weight)
                nn.init.eye_(conv.lin_r.weight)
                nn.init.zeros_(conv.lin_l.bias)

    def _conv(self, dim: int, normalize: bool) -> SAGEConv:
        if self.aggr == "attention":
            return SAGEConv((dim, dim), dim, aggr=AttentionalAggregation(nn.Linear(dim, 1)), normalize=normalize)
        return SAGEConv((dim, dim), dim, aggr=self.aggr, normalize=normalize)

    def input_embeddings(
        self, item_features: torch.Tensor | None = None, node_ids: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Return the layer-0 user [U, D] and item [I, D] representations.

        With ``node_ids`` = (user ids [U'], item ids [I']) only those rows, in
        that order: [U', D] and [I', D].
        """
        if node_ids is None:
            users, items = self.user_embedding.weight, self.item_embedding.weight
        else:
            users, items = self.user_embedding(node_ids[0]), self.item_embedding(node_ids[1])
        if self.item_feature_projection is not None:
            if item_features is None:
                raise ValueError("this encoder was built with item features; pass item_features to forward")
            features = item_features if node_ids is None else item_features[node_ids[1]]
            items = items + self.item_feature_projection(features.to(items.dtype))
        return users, items

    def forward(
        self,
        graph: BipartiteGraph | torch.Tensor,
        item_features: torch.Tensor | None = None,
        node_ids: tuple[torch.Tensor, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Propagate over ``graph``; with ``node_ids`` the graph is a subgraph whose local nodes are those ids."""
        if isinstance(graph, torch.Tensor):
            num_users, num_items = (self.num_users, self.num_items) if node_ids is None else map(len, node_ids)
            graph = BipartiteGraph(graph, num_users, num_items)
        to_item_edges, to_user_edges = graph.edge_index, graph.edge_index.flip(0)
        users, items = self.input_embeddings(item_features, node_ids)
        user_layers, item_layers = [users], [items]
        for layer, (to_item, to_user) in enumerate(zip(self.to_item, self.to_user)):
            if self.aggr == "mean":
                # Sparse CSR products have no fp16/bf16 kernels on the CPU, so this
                # layer runs in float32 even under mixed precision.
                with torch.autocast(users.device.type, enabled=False):
                    users, items = users.float(), items.float()
                    new_items = _sage_update(to_item, graph.mean_over_users(users), items)
                    new_users = _sage_update(to_user, graph.mean_over_items(items), users)
            else:
                new_items = to_item((users, items), to_item_edges, size=(graph.num_users, graph.num_items))
                new_users = to_user((items, users), to_user_edges, size=(graph.num_items, graph.num_users))
            if layer < len(self.to_item) - 1:
                if self.activation == "relu":
                    new_items, new_users = torch.relu(new_items), torch.relu(new_users)
                new_items, new_users = self.dropout(new_items), self.dropout(new_users)
            users, items = new_users, new_items
            user_layers.append(users)
            item_layers.append(items)
        if self.layer_combination == "mean":
            return torch.stack(user_layers).mean(dim=0), torch.stack(item_layers).mean(dim=0)
        if self.layer_combination == "weighted":
            weights = torch.softmax(self.layer_logits, dim=0)[:, None, None]  # [L + 1, 1, 1]
            return (torch.stack(user_layers) * weights).sum(dim=0), (torch.stack(item_layers) * weights).sum(dim=0)
        return users, items


def _sage_update(conv: SAGEConv, aggregate: torch.Tensor, root: torch.Tensor) -> torch.Tensor:
    """Apply ``conv``'s update to a precomputed neighbour aggregate: lin_l(aggregate) + lin_r(root)."""
    out = conv.lin_l(aggregate) + conv.lin_r(root)
    return nn.functional.normalize(out, p=2.0, dim=-1) if conv.normalize else out
