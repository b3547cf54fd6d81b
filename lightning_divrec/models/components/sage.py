"""GraphSAGE encoder of the bipartite user-item graph, a plain ``nn.Module``.

Legend: U users, I items, D embedding dim, E training edges.
"""

from __future__ import annotations

import torch
from torch import nn
from torch_geometric.nn import SAGEConv


class BipartiteSAGE(nn.Module):
    """Learnable id embeddings refined by GraphSAGE layers in both directions.

    Each layer ``l`` updates both node types from the other one with
    ``SAGEConv`` (Hamilton et al., NeurIPS 2017):

        h_i^(l+1) = W_root h_i^(l) + W_neigh * aggr_{u in N(i)} h_u^(l)   (users -> items)
        h_u^(l+1) = W_root h_u^(l) + W_neigh * aggr_{i in N(u)} h_i^(l)   (items -> users)

    followed by the activation (ReLU by default) and dropout on all but the last layer. Messages must flow
    both ways: with only user -> item edges, user nodes would never be updated.

    Args:
        num_users: U.
        num_items: I.
        dim: D, the width of embeddings and layers (default 64).
        num_layers: message-passing layers; 0 gives matrix factorisation (default 2).
        aggr: ``mean``, ``max`` or ``sum`` neighbour aggregation (default ``mean``).
        layer_combination: ``last`` uses the last layer; ``mean`` averages the
            id embeddings and every layer output (default ``mean``).
        dropout: dropout probability between layers (default 0).
        activation: ``relu`` or ``none`` between layers (default ``relu``).
        identity_init: start both linear maps of every layer at the identity
            with zero bias, so that an untrained layer adds the neighbour mean
            to the node's own embedding (default False: PyG's initialisation).

    Shapes:
        forward(edge_index [2, E] with rows (user, item)) -> (users [U, D], items [I, D]).
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
    ):
        super().__init__()
        if layer_combination not in ("last", "mean"):
            raise ValueError(f"layer_combination must be 'last' or 'mean', got {layer_combination!r}")
        self.num_users, self.num_items = num_users, num_items
        if activation not in ("relu", "none"):
            raise ValueError(f"activation must be 'relu' or 'none', got {activation!r}")
        self.layer_combination = layer_combination
        self.activation = activation
        self.dropout = nn.Dropout(dropout)
        self.user_embedding = nn.Embedding(num_users, dim)
        self.item_embedding = nn.Embedding(num_items, dim)
        nn.init.normal_(self.user_embedding.weight, std=0.1)
        nn.init.normal_(self.item_embedding.weight, std=0.1)
        self.to_item = nn.ModuleList(SAGEConv((dim, dim), dim, aggr=aggr) for _ in range(num_layers))
        self.to_user = nn.ModuleList(SAGEConv((dim, dim), dim, aggr=aggr) for _ in range(num_layers))
        if identity_init:
            for conv in list(self.to_item) + list(self.to_user):
                nn.init.eye_(conv.lin_l.weight)
                nn.init.eye_(conv.lin_r.weight)
                nn.init.zeros_(conv.lin_l.bias)

    def forward(self, edge_index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        user_to_item = edge_index
        item_to_user = edge_index.flip(0)
        users, items = self.user_embedding.weight, self.item_embedding.weight
        user_layers, item_layers = [users], [items]
        for layer, (to_item, to_user) in enumerate(zip(self.to_item, self.to_user)):
            new_items = to_item((users, items), user_to_item, size=(self.num_users, self.num_items))
            new_users = to_user((items, users), item_to_user, size=(self.num_items, self.num_users))
            if layer < len(self.to_item) - 1:
                if self.activation == "relu":
                    new_items, new_users = torch.relu(new_items), torch.relu(new_users)
                new_items, new_users = self.dropout(new_items), self.dropout(new_users)
            users, items = new_users, new_items
            user_layers.append(users)
            item_layers.append(items)
        if self.layer_combination == "mean":
            return torch.stack(user_layers).mean(dim=0), torch.stack(item_layers).mean(dim=0)
        return users, items
