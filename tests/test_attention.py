"""Attention ranker: transformer masking, interest pooling, mixed precision and end-to-end training."""

from __future__ import annotations

import math

import pytest
import torch

from lightning_divrec.models.components.interests import InterestPooling, score_across_interests
from lightning_divrec.models.components.transformer import SequenceTransformer, attention_mask

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
    # At 1 each interest's best item is at 0: item 3 (best of interest 1) ties with item 0.
    assert score_across_interests(scores, 1.0).tolist() == [[0.0, -1.0, -2.0, 0.0]]
    with pytest.raises(ValueError, match="1.5"):
        score_across_interests(scores, 1.5)
