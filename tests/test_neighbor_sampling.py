"""GraphSAGE on sampled neighbourhoods: subgraph propagation, batch conversion, the backend check."""

from __future__ import annotations

import math

import pytest
import torch
from torch_geometric.data import HeteroData

from lightning_divrec.config import load_train_config
from lightning_divrec.data.neighbors import ITEM, RATED_BY, RATES, USER, install_command, neighbor_backend, sampled_batch
from lightning_divrec.models.components.graph import BipartiteGraph, category_rebalance_weights
from lightning_divrec.models.components.sage import BipartiteSAGE
from lightning_divrec.train import train

NO_BACKEND = neighbor_backend() is None


def _random_graph(generator: torch.Generator, users: int = 9, items: int = 11, edges: int = 30) -> torch.Tensor:
    keys = torch.randperm(users * items, generator=generator)[:edges]
    return torch.stack([keys // items, keys % items])  # [2, E], distinct (user, item) pairs


@pytest.mark.parametrize("aggr", ["mean", "max", "attention"])
def test_full_subgraph_matches_graph(aggr):
    """Relabelling every node through node_ids must give the full-graph output, relabelled."""
    generator = torch.Generator().manual_seed(0)
    edges = _random_graph(generator)
    categories = torch.rand(11, 4, generator=generator) > 0.5
    features = torch.rand(11, 3, generator=generator)
    weights = category_rebalance_weights(edges, categories, num_users=9, strength=1.0) if aggr == "mean" else None
    torch.manual_seed(0)
    encoder = BipartiteSAGE(9, 11, dim=6, num_layers=2, aggr=aggr, item_feature_dim=3).eval()
    full_users, full_items = encoder(BipartiteGraph(edges, 9, 11, user_edge_weight=weights), features)

    user_order, item_order = torch.randperm(9, generator=generator), torch.randperm(11, generator=generator)
    user_local, item_local = torch.argsort(user_order), torch.argsort(item_order)  # global id -> local position
    local_edges = torch.stack([user_local[edges[0]], item_local[edges[1]]])
    graph = BipartiteGraph(local_edges, 9, 11, user_edge_weight=weights)
    sub_users, sub_items = encoder(graph, features, node_ids=(user_order, item_order))
    torch.testing.assert_close(sub_users, full_users[user_order])
    torch.testing.assert_close(sub_items, full_items[item_order])


def test_subgraph_uses_only_its_edges():
    """A user whose only sampled edge leads to item 1 aggregates item 1 alone."""
    torch.manual_seed(0)
    encoder = BipartiteSAGE(3, 4, dim=5, num_layers=1, layer_combination="last").eval()
    node_ids = (torch.tensor([2]), torch.tensor([1, 3]))
    users, items = encoder(torch.tensor([[0], [0]]), node_ids=node_ids)  # local edge (user 2, item 1)
    conv = encoder.to_user[0]
    item_one = encoder.item_embedding.weight[1]
    expected = conv.lin_l(item_one) + conv.lin_r(encoder.user_embedding.weight[2])
    torch.testing.assert_close(users[0], expected)
    assert items.shape == (2, 5)


def test_sampled_batch_merges_directions():
    """Build a batch of the form LinkNeighborLoader returns and check the conversion."""
    batch = HeteroData()
    batch[USER].n_id = torch.tensor([7, 3])
    batch[ITEM].n_id = torch.tensor([5, 0, 9])
    batch[RATES].edge_index = torch.tensor([[0, 1], [0, 2]])  # (user 7, item 5), (user 3, item 9)
    batch[RATES].e_id = torch.tensor([40, 12])
    batch[RATED_BY].edge_index = torch.tensor([[2, 1], [1, 0]])  # (item 9, user 3) again, (item 0, user 7)
    batch[RATED_BY].e_id = torch.tensor([12, 8])
    batch[USER].src_index = torch.tensor([0, 1])
    batch[ITEM].dst_pos_index = torch.tensor([0, 2])
    batch[ITEM].dst_neg_index = torch.tensor([1, 1, 0, 2])

    sampled = sampled_batch(batch)
    assert sampled.edge_ids.tolist() == [8, 12, 40]
    pairs = {(u, i) for u, i in sampled.edges.t().tolist()}
    assert pairs == {(0, 1), (1, 2), (0, 0)}  # the edge with e_id 12 appears once
    for edge_id, (u, i) in zip(sampled.edge_ids.tolist(), sampled.edges.t().tolist()):
        expected = {8: (7, 0), 12: (3, 9), 40: (7, 5)}[edge_id]
        assert (sampled.users[u].item(), sampled.items[i].item()) == expected
    assert sampled.negatives.tolist() == [[1, 1], [0, 2]]
    assert sampled.seed_users.tolist() == [0, 1]
    assert sampled.positives.tolist() == [0, 2]


def test_num_neighbors_one_per_layer(tiny_overrides):
    cfg = load_train_config(tiny_overrides + ["model.num_layers=2", "model.num_neighbors=[5]"])
    with pytest.raises(ValueError, match=r"one entry per GraphSAGE layer \(model.num_layers=2"):
        train(cfg)


@pytest.mark.skipif(not NO_BACKEND, reason="a neighbour-sampling backend is installed; the missing-backend message cannot occur")
def test_missing_backend_names_install_command(tiny_overrides, tmp_path):
    cfg = load_train_config(tiny_overrides + ["model.num_layers=2", "model.num_neighbors=[3,3]"])
    with pytest.raises(ImportError) as error:
        train(cfg)
    message = str(error.value)
    assert "model.num_neighbors" in message
    assert install_command() in message
    assert "pip install pyg-lib -f https://data.pyg.org/whl/torch-" in message
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.skipif(NO_BACKEND, reason="PyG's LinkNeighborLoader needs pyg-lib or torch-sparse, neither is installed")
@pytest.mark.parametrize("strength", [0.0, 1.0])
def test_link_neighbor_training_runs(tiny_overrides, strength):
    overrides = tiny_overrides + ["model.num_layers=2", "model.num_neighbors=[3,3]", "model.num_negatives=2", f"model.rebalance_strength={strength}"]
    metrics = train(load_train_config(overrides))
    assert metrics["epochs_trained"] == 2
    assert all(math.isfinite(value) for value in metrics["test"].values())
