"""Attention ranker: transformer masking, interest pooling, mixed precision and end-to-end training."""

from __future__ import annotations

import csv
import dataclasses
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lightning_divrec.models.components.interests import InterestPooling, score_across_interests
from lightning_divrec.models.components.transformer import SequenceTransformer, attention_mask

REPO = Path(__file__).resolve().parents[1]
NUM_ITEMS = 20
PAD = NUM_ITEMS


def _encoder(norm: str = "pre", max_length: int = 6) -> SequenceTransformer:
    torch.manual_seed(0)
    return SequenceTransformer(NUM_ITEMS, max_length=max_length, dim=16, num_blocks=2, heads=2, dropout=0.1, norm=norm).eval()


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_transformer_output_shape(norm):
    sequences = torch.tensor([[PAD, PAD, 1, 2, 3, 4], [5, 6, 7, 8, 9, 10], [PAD] * 6])
    output = _encoder(norm)(sequences)
    assert output.shape == (3, 6, 16)
    assert torch.isfinite(output).all()


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_future_item_never_changes_earlier_output(norm):
    encoder = _encoder(norm)
    sequences = torch.tensor([[PAD, 1, 2, 3, 4, 5]])
    reference = encoder(sequences)
    for position in range(1, 6):
        changed = sequences.clone()
        changed[0, position] = 19
        output = encoder(changed)
        assert torch.equal(output[0, :position], reference[0, :position]), position
        assert not torch.allclose(output[0, position], reference[0, position]), position


@pytest.mark.parametrize("norm", ["pre", "post"])
def test_padding_never_attended(norm):
    encoder = _encoder(norm)
    padded = torch.tensor([[PAD, PAD, PAD, 3, 7, 11]])
    unpadded = padded[:, 3:]
    # Positions count from the most recent item, so padding must not change the real outputs.
    torch.testing.assert_close(encoder(padded)[:, 3:], encoder(unpadded), atol=1e-6, rtol=1e-5)
    # Garbage in the padding row of the item table changes nothing either.
    table = encoder.item_embedding.weight.detach().clone()
    table[PAD] = torch.randn(16) * 100
    torch.testing.assert_close(encoder(padded, table)[:, 3:], encoder(padded)[:, 3:], atol=1e-6, rtol=1e-5)


def test_attention_mask_rows_never_empty():
    mask = attention_mask(torch.tensor([[PAD, PAD, 1, 2]]), PAD)
    assert mask.shape == (1, 1, 4, 4)
    assert mask.any(dim=-1).all()
    # Real positions see only real keys at or before them.
    assert mask[0, 0, 3].tolist() == [False, False, True, True]
    assert mask[0, 0, 2].tolist() == [False, False, True, False]


def test_sequence_longer_than_max_length_rejected():
    with pytest.raises(ValueError, match="max_length=6"):
        _encoder()(torch.zeros(1, 7, dtype=torch.long))


def test_interest_pooling_is_causal_and_ignores_padding():
    torch.manual_seed(0)
    pooling = InterestPooling(dim=8, num_interests=3)
    hidden = torch.randn(1, 5, 8)
    real = torch.tensor([[False, True, True, True, True]])
    output = pooling(hidden, real)
    assert output.shape == (1, 5, 3, 8)
    changed_future = hidden.clone()
    changed_future[0, 4] += 1.0
    torch.testing.assert_close(pooling(changed_future, real)[0, :4], output[0, :4])
    changed_padding = hidden.clone()
    changed_padding[0, 0] = 1e4
    torch.testing.assert_close(pooling(changed_padding, real)[0, 1:], output[0, 1:])


def test_interest_mix_ends():
    # Interest 0 scores every item higher than interest 1 does.
    scores = torch.tensor([[[10.0, 9.0, 8.0, 1.0], [0.0, 0.0, 0.0, 3.0]]])
    assert score_across_interests(scores, 0.0).tolist() == [[10.0, 9.0, 8.0, 3.0]]
    # Interest 0 claims items 0-2 (best 10), interest 1 claims item 3 (best 3). At 1 each
    # claimed set's best item is at 0: item 3 ties with item 0.
    assert score_across_interests(scores, 1.0).tolist() == [[0.0, -1.0, -2.0, 0.0]]
    # With item 0 removed from the ranking, interest 0's best remaining item (1, at 9) sets its offset.
    excluded = torch.tensor([[True, False, False, False]])
    assert score_across_interests(scores, 1.0, excluded).tolist() == [[1.0, 0.0, -1.0, 0.0]]
    with pytest.raises(ValueError, match="1.5"):
        score_across_interests(scores, 1.5)


# ----- the LightningModule through the real Trainer ---------------------------------------------


def _attention_overrides(tiny_overrides: list[str]) -> list[str]:
    shrunk = [override for override in tiny_overrides if not override.startswith("model.embedding_dim")]
    return shrunk + ["model=attention", "model.embedding_dim=8", "model.max_length=4", "data.batch_size=8"]


def _genre_ild(top: torch.Tensor, genre: torch.Tensor) -> float:
    """Return the share of item pairs in each list whose (single) genres differ, averaged over lists."""
    genres = genre[top]  # [B, K]
    differ = (genres[:, :, None] != genres[:, None, :]).float()  # [B, K, K]
    k = top.shape[1]
    return (differ.sum(dim=(1, 2)) / (k * (k - 1))).mean().item()


def test_interest_mix_trades_relevance_for_diversity():
    # 20 items, 0-9 of genre 0 and 10-19 of genre 1. Every interest shares a part
    # that prefers genre 0. Interest 0 adds a preference for genre 0 and interest 1 a
    # weaker one for genre 1. User 1 is user 0 with the items' genres swapped.
    shared = torch.cat([5.0 - 0.1 * torch.arange(10.0), 1.0 - 0.1 * torch.arange(10.0)])  # [I]
    genre_zero = torch.cat([torch.ones(10), torch.zeros(10)])
    user = torch.stack([shared + genre_zero, shared + 2.0 * (1 - genre_zero)])  # [M, I]
    swap = torch.cat([torch.arange(10, 20), torch.arange(10)])
    scores = torch.stack([user, user[:, swap]])  # [B, M, I]
    genre = torch.stack([1 - genre_zero.long(), genre_zero.long()])  # [B, I] genre of each item per user
    relevance = scores.amax(dim=1)  # [B, I] the plain maximum, the mix-0 ranking

    ild, kept_relevance = [], []
    for mix in (0.0, 0.25, 0.5, 0.75, 1.0):
        top = score_across_interests(scores, mix).topk(10, dim=1).indices  # [B, 10]
        ild.append(sum(_genre_ild(top[b : b + 1], genre[b]) for b in range(2)) / 2)
        kept_relevance.append(relevance.gather(1, top).sum().item())

    assert ild[0] == 0.0, "at mix 0 the dominant interest's genre fills the list"
    assert ild[-1] > 0.4, "at mix 1 both interests contribute items"
    assert all(later >= earlier for earlier, later in zip(ild, ild[1:])), ild
    assert all(later <= earlier for earlier, later in zip(kept_relevance, kept_relevance[1:])), kept_relevance
    assert kept_relevance[-1] < kept_relevance[0]


@pytest.mark.parametrize("precision", ["bf16-mixed", "16-mixed"])
def test_losses_finite_under_mixed_precision(tiny_overrides, tmp_path, precision):
    from lightning_divrec.config import load_train_config
    from lightning_divrec.train import train

    metrics = train(load_train_config(_attention_overrides(tiny_overrides) + [f"trainer.precision={precision}", "run_name=mixed"]))
    rows = list(csv.DictReader((tmp_path / "runs" / "mixed" / "csv" / "metrics.csv").open()))
    losses = [float(row["train/loss_step"]) for row in rows if row.get("train/loss_step")]
    assert losses, "no training loss was logged"
    assert all(math.isfinite(value) for value in losses)
    assert math.isfinite(metrics["test"]["test/ndcg@10"])


@pytest.mark.parametrize("extra", [[], ["model.loss=sampled", "model.num_negatives=5", "model.norm=post"], ["model.num_interests=3", "model.interest_mix=0.5"]])
def test_train_end_to_end(tiny_overrides, extra):
    from lightning_divrec.config import load_train_config
    from lightning_divrec.train import train

    metrics = train(load_train_config(_attention_overrides(tiny_overrides) + extra))
    assert metrics["test"]["test/users"] == 12
    assert 0.0 <= metrics["test"]["test/ndcg@10"] <= 1.0
    assert metrics["val"]["val/ndcg@10"] > 0.0


def test_evaluate_reproduces_attention_metrics(tiny_overrides):
    from lightning_divrec.config import load_evaluate_config, load_train_config
    from lightning_divrec.evaluate import evaluate
    from lightning_divrec.train import train

    metrics = train(load_train_config(_attention_overrides(tiny_overrides) + ["model.num_interests=2"]))
    results = evaluate(load_evaluate_config([f"ckpt_path={metrics['best_checkpoint']}", "rerank.methods=[]"]))
    for name in ("test/ndcg@10", "test/recall@20", "test/ild@10"):
        assert results[name] == pytest.approx(metrics["test"][name], abs=1e-6), name


def test_score_reads_test_history_with_validation_item(tiny_ml100k):
    import lightning as L
    from omegaconf import OmegaConf

    from lightning_divrec.config import DataConfig
    from lightning_divrec.config.model_schemas import AttentionConfig
    from lightning_divrec.data import RecDataModule
    from lightning_divrec.models.attention import AttentionRankerModule

    length = 4
    datamodule = RecDataModule(OmegaConf.merge(OmegaConf.structured(DataConfig), {"path": str(tiny_ml100k), "batch_size": 8}))
    datamodule.setup("fit")
    config = dataclasses.asdict(AttentionConfig(embedding_dim=8, max_length=length))
    torch.manual_seed(0)
    model = AttentionRankerModule(datamodule.num_users, datamodule.num_items, config, [10])
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        use_distributed_sampler=False, num_sanity_val_steps=0, enable_model_summary=False)
    trainer.fit(model, datamodule=datamodule)
    model.eval()

    data, split = datamodule.interactions, datamodule.split
    pad = datamodule.num_items
    users = torch.as_tensor(sorted(set(data.user[split.test].tolist())))

    def expected_scores(index) -> torch.Tensor:
        rows = []
        for user in users.tolist():
            mine = [row for row in index.tolist() if data.user[row] == user]
            items = [int(data.item[row]) for row in sorted(mine, key=lambda row: (data.timestamp[row], data.item[row]))]
            rows.append([pad] * max(0, length - len(items)) + items[-length:])
        with torch.no_grad():
            hidden = model.encoder(torch.tensor(rows))[:, -1]  # [B, D]
            return hidden @ model.encoder.item_embedding.weight[:pad].T

    model.scoring_stage = "test"
    with_valid = expected_scores(np.concatenate([split.train, split.valid]))
    torch.testing.assert_close(model.score(users), with_valid)
    model.scoring_stage = "val"
    torch.testing.assert_close(model.score(users), expected_scores(split.train))
    assert not torch.allclose(with_valid, expected_scores(split.train))


def test_text_encoder_loads_offline(tmp_path):
    # Any network access would go to a closed loopback port and fail.
    script = (
        "from lightning_divrec.models.components.text_encoder import TextEncoder\n"
        "encoder = TextEncoder(None, max_length=16)\n"
        "vectors = encoder(['Toy Story (1995)', 'Heat (1995)'])\n"
        "print(tuple(vectors.shape), float(vectors.norm(dim=1).min()))\n"
    )
    env = os.environ | {
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"),
        "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "NO_PROXY": "",
    }
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    shape, norm = result.stdout.strip().rsplit(" ", 1)
    assert shape == "(2, 384)"
    assert float(norm) == pytest.approx(1.0, abs=1e-5)


def test_text_features_fused_and_cached(tiny_overrides, tmp_path):
    from lightning_divrec.config import load_train_config
    from lightning_divrec.train import train

    cache = tmp_path / "text-cache"
    overrides = _attention_overrides(tiny_overrides) + ["model.text_model=all-MiniLM-L6-v2", f"model.text_cache_dir={cache}"]
    metrics = train(load_train_config(overrides + ["run_name=text"]))
    assert len(list(cache.glob("text-embeddings-*.pt"))) == 1
    checkpoint = torch.load(metrics["best_checkpoint"], map_location="cpu", weights_only=True)
    assert checkpoint["state_dict"]["text_projection.weight"].shape == (8, 384)
    assert "text_features" not in checkpoint["state_dict"]


@pytest.mark.parametrize("loss", ["full", "sampled"])
def test_loss_finite_cpu_fp16(loss):
    """Lightning runs ``16-mixed`` as bf16 on a CPU, so fp16 autocast is exercised here directly."""
    from lightning_divrec.config.model_schemas import AttentionConfig
    from lightning_divrec.models import AttentionRankerModule

    config = dataclasses.asdict(AttentionConfig(embedding_dim=16, max_length=6, loss=loss, num_negatives=8))
    torch.manual_seed(0)
    module = AttentionRankerModule(num_users=3, num_items=NUM_ITEMS, model_config=config, ks=[5])
    with torch.no_grad():
        module.encoder.item_embedding.weight.mul_(300.0)  # logits far beyond fp16's range of exp()
    sequences = torch.tensor([[PAD, PAD, 1, 2, 3, 4], [5, 6, 7, 8, 9, 10]])
    targets = torch.tensor([[PAD, PAD, 2, 3, 4, 11], [6, 7, 8, 9, 10, 12]])
    real = sequences != PAD
    with torch.autocast("cpu", dtype=torch.float16):
        table = module.item_table()
        hidden = module.encoder(sequences, table)  # the final layer norm returns float32 under autocast
        outputs = hidden[real].half() * 50  # [P, D] as fp16 activations, large enough to overflow exp() in fp16
        value = module._next_item_loss(outputs, targets[real], table[:NUM_ITEMS].half())
    value.backward()
    assert torch.isfinite(value)
    assert all(torch.isfinite(parameter.grad).all() for parameter in module.parameters() if parameter.grad is not None)
