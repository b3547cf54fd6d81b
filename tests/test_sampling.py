"""Negative sampling: never a training positive, uniform over the rest."""

import pytest
import torch

from lightning_divrec.data import NegativeSampler


def _sampler():
    # Items 0..3. User 0 ("a") has positives {0,1,2}; user 1 ("b") has {0};
    # users 2.. make item 1 very popular and items 2 and 3 rare.
    users = [0, 0, 0, 1] + list(range(2, 100)) + [100, 101]
    items = [0, 1, 2, 0] + [1] * 98 + [2, 3]
    return NegativeSampler(torch.tensor(users), torch.tensor(items), num_items=4)


def test_only_negative_is_drawn():
    sampler = _sampler()
    draws = sampler.sample(torch.zeros(10_000, dtype=torch.long), generator=torch.Generator().manual_seed(0))
    assert torch.all(draws == 3)


def test_uniform_over_non_positives():
    sampler = _sampler()
    draws = sampler.sample(torch.ones(10_000, dtype=torch.long), generator=torch.Generator().manual_seed(1))
    counts = torch.bincount(draws, minlength=4)
    assert counts[0] == 0
    for item in (1, 2, 3):
        assert abs(int(counts[item]) - 3333) <= 150, counts.tolist()


def test_exclusion_covers_all_training_positives():
    # Every positive of user 0 is excluded even when the batch holds only one of them.
    sampler = _sampler()
    assert sampler.is_positive(torch.tensor([0, 0, 0, 0]), torch.tensor([0, 1, 2, 3])).tolist() == [True, True, True, False]


def test_saturated_user_rejected():
    with pytest.raises(ValueError, match="user index 0 has interacted with all 3 items"):
        NegativeSampler(torch.tensor([0, 0, 0, 1]), torch.tensor([0, 1, 2, 0]), num_items=3)


def test_nearly_saturated_user_terminates():
    # 999 of 1000 items are positives: rejection alone would need ~1000 rounds.
    users = torch.zeros(999, dtype=torch.long)
    items = torch.arange(1, 1000)
    sampler = NegativeSampler(users, items, num_items=1000, max_rounds=3)
    draws = sampler.sample(torch.zeros(50, dtype=torch.long), generator=torch.Generator().manual_seed(0))
    assert torch.all(draws == 0)


def test_per_device_batch_rule():
    from lightning_divrec.data.datamodule import per_device_batch_size

    assert per_device_batch_size(2048, 1, 1) == 2048
    assert per_device_batch_size(2048, 2, 1) == 1024
    assert per_device_batch_size(2048, 4, 2) == 256
    with pytest.raises(ValueError, match="multiple of processes"):
        per_device_batch_size(2048, 3, 1)
    with pytest.raises(ValueError, match="multiple of processes"):
        per_device_batch_size(2, 4, 1)
