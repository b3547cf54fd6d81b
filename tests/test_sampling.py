"""Negative sampling: never a training positive, uniform over the rest."""

import numpy as np
import pytest
import torch

from lightning_divrec.data import NegativeSampler, sampling


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


def _c08_weights(alpha: float) -> torch.Tensor:
    # Training interactions per item in ``_sampler``: item 0: 2, item 1: 99, item 2: 2, item 3: 1.
    return torch.tensor([2.0, 99.0, 2.0, 1.0]) ** alpha


def _weighted_sampler(alpha: float) -> NegativeSampler:
    users = [0, 0, 0, 1] + list(range(2, 100)) + [100, 101]
    items = [0, 1, 2, 0] + [1] * 98 + [2, 3]
    return NegativeSampler(torch.tensor(users), torch.tensor(items), num_items=4, item_weights=_c08_weights(alpha))


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_popularity_negatives_follow_weights(alpha):
    sampler = _weighted_sampler(alpha)
    draws = sampler.sample(torch.ones(100_000, dtype=torch.long), generator=torch.Generator().manual_seed(2))
    counts = torch.bincount(draws, minlength=4).double()
    assert counts[0] == 0  # user 1's only positive
    weights = _c08_weights(alpha)[1:]
    expected = weights / weights.sum()
    for item in (1, 2, 3):
        p = float(expected[item - 1])
        sd = (p * (1 - p) / 100_000) ** 0.5
        assert abs(float(counts[item]) / 100_000 - p) <= 4 * sd, (alpha, counts.tolist(), expected.tolist())


def test_popularity_negatives_exclude_all_positives():
    sampler = _weighted_sampler(1.0)
    draws = sampler.sample(torch.zeros(10_000, dtype=torch.long), generator=torch.Generator().manual_seed(3))
    assert torch.all(draws == 3)


def test_popularity_zero_alpha_is_uniform():
    sampler = _weighted_sampler(0.0)
    draws = sampler.sample(torch.ones(10_000, dtype=torch.long), generator=torch.Generator().manual_seed(1))
    counts = torch.bincount(draws, minlength=4)
    for item in (1, 2, 3):
        assert abs(int(counts[item]) - 3333) <= 150, counts.tolist()


def test_weighted_saturated_user_named():
    # Item 2 has weight 0, so user 0 with positives {0, 1} has nothing left to draw.
    with pytest.raises(ValueError, match=r"user index 0 has interacted with all 2 items of positive weight \(user id 'ann'\)"):
        NegativeSampler(
            torch.tensor([0, 0, 1]), torch.tensor([0, 1, 0]), num_items=3,
            item_weights=torch.tensor([1.0, 1.0, 0.0]), user_ids=np.array(["ann", "bob"]),
        )


def test_weighted_nearly_saturated_terminates():
    users = torch.zeros(998, dtype=torch.long)
    items = torch.arange(2, 1000)
    weights = torch.ones(1000)
    weights[0] = 3.0
    sampler = NegativeSampler(users, items, num_items=1000, max_rounds=2, item_weights=weights)
    draws = sampler.sample(torch.zeros(4000, dtype=torch.long), generator=torch.Generator().manual_seed(0))
    assert set(draws.tolist()) == {0, 1}
    # Item 0 has 3 times the weight of item 1: P(0) = 3/4 (4000 draws, sd ~ 27).
    assert abs(int((draws == 0).sum()) - 3000) <= 110


def test_datamodule_popularity_negatives(tiny_ml100k):
    from omegaconf import OmegaConf

    from lightning_divrec.config import DataConfig
    from lightning_divrec.data import RecDataModule

    module = RecDataModule(OmegaConf.structured(DataConfig(path=str(tiny_ml100k), negative_sampling="popularity")))
    module.setup("fit")
    torch.manual_seed(0)
    batch = module.train_dataset.__getitems__(list(range(len(module.train_dataset))))
    history = set(zip(module.train_edges[0].tolist(), module.train_edges[1].tolist()))
    assert all((user, item) not in history for user, item in zip(batch["users"].tolist(), batch["negatives"].tolist()))
    counts = module.item_interaction_counts
    assert torch.all(counts[batch["negatives"]] > 0)


@pytest.mark.parametrize("dense", [True, False])
def test_membership_table_and_sorted_keys_agree(dense, monkeypatch):
    if not dense:
        monkeypatch.setattr(sampling, "DENSE_TABLE_LIMIT", 0)
    generator = torch.Generator().manual_seed(5)
    users = torch.randint(0, 30, (200,), generator=generator)
    items = torch.randint(0, 40, (200,), generator=generator)
    sampler = sampling.NegativeSampler(users, items, num_items=40)
    assert (sampler.dense_table is not None) == dense
    positives = set(zip(users.tolist(), items.tolist()))
    # Users 30 to 34 have no training interaction, so nothing of theirs is positive.
    query_users = torch.arange(35).repeat_interleave(40)
    query_items = torch.arange(40).repeat(35)
    expected = [(user, item) in positives for user, item in zip(query_users.tolist(), query_items.tolist())]
    assert sampler.is_positive(query_users, query_items).tolist() == expected
    drawn = sampler.sample(users)
    assert not any((user, item) in positives for user, item in zip(users.tolist(), drawn.tolist()))
