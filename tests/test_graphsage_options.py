"""GraphSAGE options: sparse and weighted neighbour means, attention aggregation, item features, losses."""

from __future__ import annotations

import math

import pytest
import torch

from lightning_divrec.config import load_evaluate_config, load_train_config
from lightning_divrec.evaluate import evaluate
from lightning_divrec.models.components.graph import BipartiteGraph, category_rebalance_weights
from lightning_divrec.models.components.sage import BipartiteSAGE
from lightning_divrec.models.graphsage import EdgeWeightTable, per_user_normalised
from lightning_divrec.models.losses import bpr_loss, sampled_softmax_loss
from lightning_divrec.train import train

# User 0 has items 0, 1 (category A) and 2 (category B); user 1 has items 2 and 3 (no category).
EDGES = torch.tensor([[0, 0, 0, 1, 1], [0, 1, 2, 2, 3]])
CATEGORIES = torch.tensor([[True, False], [True, False], [False, True], [False, False]])


def test_rebalance_weights_by_hand():
    weights = category_rebalance_weights(EDGES, CATEGORIES, num_users=2, strength=1.0)
    # User 0: share of A is 2/3 and of B 1/3, so weights (2/3)^-1 = 1.5 and (1/3)^-1 = 3.
    # User 1: one category (B) among its items, so the uncategorised item 3 gets f = 1 / 1
    # and item 2 gets f = share of B = 1.
    assert weights.tolist() == pytest.approx([1.5, 1.5, 3.0, 1.0, 1.0])


def test_rebalance_strength_zero_is_uniform():
    weights = category_rebalance_weights(EDGES, CATEGORIES, num_users=2, strength=0.0)
    assert weights.tolist() == [1.0] * 5


def test_weighted_user_mean_by_hand():
    weights = category_rebalance_weights(EDGES, CATEGORIES, num_users=2, strength=1.0)
    graph = BipartiteGraph(EDGES, num_users=2, num_items=4, user_edge_weight=weights)
    items = torch.tensor([[1.0], [2.0], [3.0], [4.0]])
    users = torch.tensor([[10.0], [20.0]])
    # User 0: (1.5 * 1 + 1.5 * 2 + 3 * 3) / 6 = 2.25; user 1: (3 + 4) / 2 = 3.5.
    assert (graph.user_from_item @ items).flatten().tolist() == pytest.approx([2.25, 3.5])
    # Item means stay unweighted: item 2 has users 0 and 1.
    assert (graph.item_from_user @ users).flatten().tolist() == pytest.approx([10.0, 10.0, 15.0, 20.0])


def _copy_layers(source: BipartiteSAGE, target: BipartiteSAGE) -> None:
    target.user_embedding.load_state_dict(source.user_embedding.state_dict())
    target.item_embedding.load_state_dict(source.item_embedding.state_dict())
    for mine, theirs in zip(list(target.to_item) + list(target.to_user), list(source.to_item) + list(source.to_user)):
        mine.lin_l.load_state_dict(theirs.lin_l.state_dict())
        mine.lin_r.load_state_dict(theirs.lin_r.state_dict())


def test_attention_with_constant_gate_is_mean():
    torch.manual_seed(0)
    mean = BipartiteSAGE(2, 4, dim=3, num_layers=2, aggr="mean")
    attention = BipartiteSAGE(2, 4, dim=3, num_layers=2, aggr="attention")
    _copy_layers(mean, attention)
    for conv in list(attention.to_item) + list(attention.to_user):
        gate = conv.aggr_module.gate_nn
        torch.nn.init.zeros_(gate.weight)
        torch.nn.init.zeros_(gate.bias)
    expected_users, expected_items = mean(EDGES)
    users, items = attention(EDGES)
    assert torch.allclose(users, expected_users, atol=1e-6)
    assert torch.allclose(items, expected_items, atol=1e-6)


def test_attention_gate_changes_output():
    torch.manual_seed(0)
    attention = BipartiteSAGE(2, 4, dim=3, num_layers=1, aggr="attention", layer_combination="last")
    before = attention(EDGES)[0].detach().clone()
    with torch.no_grad():
        attention.to_user[0].aggr_module.gate_nn.weight.fill_(5.0)
    assert not torch.allclose(attention(EDGES)[0], before)


def test_weighted_layers_start_as_mean():
    torch.manual_seed(0)
    mean = BipartiteSAGE(2, 4, dim=3, num_layers=2, layer_combination="mean")
    weighted = BipartiteSAGE(2, 4, dim=3, num_layers=2, layer_combination="weighted")
    _copy_layers(mean, weighted)
    assert torch.allclose(weighted(EDGES)[1], mean(EDGES)[1], atol=1e-6)
    assert weighted.layer_logits.requires_grad


def test_item_features_enter_item_inputs():
    torch.manual_seed(0)
    encoder = BipartiteSAGE(2, 4, dim=3, num_layers=1, item_feature_dim=2)
    features = CATEGORIES.float()
    with pytest.raises(ValueError, match="pass item_features"):
        encoder(EDGES)
    _, items = encoder.input_embeddings(features)
    expected = encoder.item_embedding.weight + features @ encoder.item_feature_projection.weight.T
    assert torch.allclose(items, expected)
    changed = encoder(EDGES, features * 2)[1]
    assert not torch.allclose(changed, encoder(EDGES, features)[1])


def test_sampled_softmax_by_hand():
    loss = sampled_softmax_loss(torch.tensor([2.0]), torch.tensor([[0.0, 1.0]]))
    expected = -2.0 + math.log(math.exp(2.0) + math.exp(0.0) + math.exp(1.0))
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    halved = sampled_softmax_loss(torch.tensor([2.0]), torch.tensor([[0.0, 1.0]]), temperature=2.0)
    assert halved.item() == pytest.approx(-1.0 + math.log(math.exp(1.0) + 1.0 + math.exp(0.5)), rel=1e-6)


def test_sampled_softmax_finite_in_fp16():
    positives = torch.tensor([60000.0, -60000.0], dtype=torch.float16, requires_grad=True)
    negatives = torch.tensor([[-60000.0], [60000.0]], dtype=torch.float16)
    loss = sampled_softmax_loss(positives, negatives)
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(positives.grad).all()


def test_rebalance_needs_mean(tiny_overrides):
    with pytest.raises(ValueError, match="needs model.aggr=mean"):
        train(load_train_config(tiny_overrides + ["model.aggr=max", "model.rebalance_strength=1.0"]))


def test_weighted_losses_by_hand():
    positives = torch.tensor([2.0, 0.5])
    negatives = torch.tensor([[0.0, 1.0], [1.0, 1.5]])
    weight = torch.tensor([3.0, 1.0])
    per_row_bpr = torch.nn.functional.softplus(negatives - positives[:, None]).mean(dim=1)
    expected_bpr = (3 * per_row_bpr[0] + per_row_bpr[1]) / 4
    assert bpr_loss(positives[:, None], negatives, weight=weight).item() == pytest.approx(expected_bpr.item(), rel=1e-6)
    per_row_softmax = torch.stack([sampled_softmax_loss(positives[b : b + 1], negatives[b : b + 1]) for b in range(2)])
    expected_softmax = (3 * per_row_softmax[0] + per_row_softmax[1]) / 4
    weighted = sampled_softmax_loss(positives, negatives, weight=weight)
    assert weighted.item() == pytest.approx(expected_softmax.item(), rel=1e-6)
    assert bpr_loss(positives[:, None], negatives, weight=torch.ones(2)).item() == pytest.approx(
        bpr_loss(positives[:, None], negatives).item(), rel=1e-6
    )


def test_edge_weight_table_lookup():
    weights = category_rebalance_weights(EDGES, CATEGORIES, num_users=2, strength=1.0)
    table = EdgeWeightTable(EDGES, weights, num_items=4)
    order = torch.tensor([4, 2, 0, 3, 1])
    assert table.lookup(EDGES[0, order], EDGES[1, order]).tolist() == pytest.approx(weights[order].tolist())
    with pytest.raises(ValueError, match="missing from the training edges"):
        table.lookup(torch.tensor([1]), torch.tensor([0]))


def test_loss_weights_average_one_per_user():
    weights = category_rebalance_weights(EDGES, CATEGORIES, num_users=2, strength=1.0)  # [1.5, 1.5, 3, 1, 1]
    scaled = per_user_normalised(EDGES[0], weights, num_users=2)
    # User 0: total 6 over 3 edges, so each weight times 3 / 6; user 1: already averages 1.
    assert scaled.tolist() == pytest.approx([0.75, 0.75, 1.5, 1.0, 1.0])


def test_rebalanced_loss_any_aggregation(tiny_overrides):
    overrides = tiny_overrides + ["model.aggr=max", "model.rebalance_strength=2.0", "model.rebalance_mode=loss"]
    plain = train(load_train_config(tiny_overrides + ["model.aggr=max", "run_name=plain"]))
    rebalanced = train(load_train_config(overrides + ["run_name=rebalanced"]))
    assert math.isfinite(rebalanced["test"]["test/ndcg@10"])
    # Same seed and data: only the loss weights differ, so the learnt scores must differ.
    assert rebalanced["test"] != plain["test"]


def test_all_options_train_and_evaluate(tiny_overrides, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    overrides = tiny_overrides + [
        "run_name=options",
        "model.item_features=[categories,text]",
        "model.aggr=attention",
        "model.layer_combination=weighted",
        "model.normalize=true",
        "model.loss=softmax",
        "model.num_negatives=4",
        f"data.cache_dir={tmp_path / 'cache'}",
    ]
    metrics = train(load_train_config(overrides))
    assert math.isfinite(metrics["test"]["test/ndcg@10"])
    # The text embeddings were cached once under the data cache folder.
    assert len(list((tmp_path / "cache" / "text").glob("*.pt"))) == 1
    results = evaluate(load_evaluate_config([f"ckpt_path={metrics['best_checkpoint']}"]))
    assert results["test/ndcg@10"] == pytest.approx(metrics["test"]["test/ndcg@10"], abs=1e-6)


def test_rebalanced_model_trains_and_evaluates(tiny_overrides):
    metrics = train(load_train_config(tiny_overrides + ["run_name=rebalanced", "model.rebalance_strength=1.0"]))
    results = evaluate(load_evaluate_config([f"ckpt_path={metrics['best_checkpoint']}"]))
    assert results["test/ndcg@10"] == pytest.approx(metrics["test"]["test/ndcg@10"], abs=1e-6)
