"""GraphSAGE message directions on the bipartite user-item graph."""

import pytest
import torch
from torch_geometric.nn import SAGEConv

from lightning_divrec.models.components.sage import BipartiteSAGE

X_USER = torch.tensor([[10.0], [20.0]])
X_ITEM = torch.tensor([[1.0], [2.0], [3.0]])
EDGES_UI = torch.tensor([[0, 0, 1, 1], [0, 1, 1, 2]])


def _unit_conv():
    conv = SAGEConv((1, 1), 1, aggr="mean")
    with torch.no_grad():
        conv.lin_l.weight.fill_(1.0)
        conv.lin_l.bias.zero_()
        conv.lin_r.weight.fill_(1.0)
    return conv


def test_user_to_item_messages():
    out = _unit_conv()((X_USER, X_ITEM), EDGES_UI, size=(2, 3))
    assert out.shape == (3, 1)
    assert out.flatten().tolist() == [11.0, 17.0, 23.0]


def test_item_to_user_messages():
    out = _unit_conv()((X_ITEM, X_USER), EDGES_UI.flip(0), size=(3, 2))
    assert out.shape == (2, 1)
    assert out.flatten().tolist() == [11.5, 22.5]


def test_unflipped_edges_rejected():
    with pytest.raises((IndexError, RuntimeError, ValueError)):
        _unit_conv()((X_ITEM, X_USER), EDGES_UI, size=(3, 2))


def test_isolated_user_keeps_root_term():
    out = _unit_conv()((X_ITEM, torch.tensor([[10.0], [20.0], [5.0]])), EDGES_UI.flip(0), size=(3, 3))
    assert out.flatten().tolist() == [11.5, 22.5, 5.0]


def _set_unit_weights(model: BipartiteSAGE):
    with torch.no_grad():
        model.user_embedding.weight.copy_(X_USER)
        model.item_embedding.weight.copy_(X_ITEM)
        for conv in list(model.to_item) + list(model.to_user):
            conv.lin_l.weight.fill_(1.0)
            conv.lin_l.bias.zero_()
            conv.lin_r.weight.fill_(1.0)


def test_encoder_updates_both_sides():
    model = BipartiteSAGE(2, 3, dim=1, num_layers=1, layer_combination="last")
    _set_unit_weights(model)
    users, items = model(EDGES_UI)
    assert users.flatten().tolist() == [11.5, 22.5]
    assert items.flatten().tolist() == [11.0, 17.0, 23.0]


def test_encoder_layer_mean():
    model = BipartiteSAGE(2, 3, dim=1, num_layers=1, layer_combination="mean")
    _set_unit_weights(model)
    users, items = model(EDGES_UI)
    assert users.flatten().tolist() == [(10 + 11.5) / 2, (20 + 22.5) / 2]
    assert items.flatten().tolist() == [(1 + 11) / 2, (2 + 17) / 2, (3 + 23) / 2]


def test_encoder_shapes():
    model = BipartiteSAGE(5, 7, dim=4, num_layers=3)
    edges = torch.tensor([[0, 1, 4], [6, 0, 3]])
    users, items = model(edges)
    assert users.shape == (5, 4)
    assert items.shape == (7, 4)


@pytest.mark.parametrize("init, expected_std", [("normal", lambda rows, dim: 0.1), ("xavier_normal", lambda rows, dim: (2 / (rows + dim)) ** 0.5)])
def test_embedding_init_spread(init, expected_std):
    torch.manual_seed(0)
    encoder = BipartiteSAGE(3000, 2000, dim=32, num_layers=0, embedding_init=init)
    for weight in (encoder.user_embedding.weight, encoder.item_embedding.weight):
        rows, dim = weight.shape
        assert weight.std().item() == pytest.approx(expected_std(rows, dim), rel=0.03)
        assert abs(weight.mean().item()) < 0.01


def test_embedding_init_invalid_rejected():
    with pytest.raises(ValueError, match="embedding_init must be one of normal, xavier_normal, got 'uniform'"):
        BipartiteSAGE(3, 4, dim=8, embedding_init="uniform")
