"""BPR loss stays finite and accurate in half precision."""

import math

import pytest
import torch

from lightning_divrec.models.losses import bpr_loss


def _loss_and_grad(x: torch.Tensor):
    x = x.clone().requires_grad_(True)
    loss = bpr_loss(x, torch.zeros_like(x))
    loss.backward()
    return loss, x.grad


def test_bpr_fp16_values():
    loss, grad = _loss_and_grad(torch.tensor([-20.0, 0.0, 3.0], dtype=torch.float16))
    expected = (20.000000002 + math.log(2) + math.log1p(math.exp(-3))) / 3
    assert loss.item() == pytest.approx(6.913911, abs=1e-2)
    assert loss.item() == pytest.approx(expected, abs=1e-2)
    # d mean / dx_i = -sigmoid(-x_i) / 3
    assert torch.allclose(grad.float() * 3, torch.tensor([-1.0, -0.5, -0.047426]), atol=1e-3)
    assert torch.isfinite(grad).all()


def test_bpr_fp16_no_silent_error_at_minus_17():
    loss, _ = _loss_and_grad(torch.tensor([-17.0], dtype=torch.float16))
    assert loss.item() == pytest.approx(17.0, abs=1e-2)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_bpr_under_autocast(dtype):
    torch.manual_seed(0)
    users = torch.randn(64, 16) * 4
    items = torch.randn(64, 16) * 4
    reference = bpr_loss((users * items).sum(1), -(users * items).sum(1))
    device_type = "cpu"
    with torch.autocast(device_type, dtype=torch.bfloat16 if dtype is torch.bfloat16 else torch.float16):
        positive = (users.to(dtype) * items.to(dtype)).sum(1)
        loss = bpr_loss(positive, -positive)
    assert torch.isfinite(loss)
    assert abs(loss.item() - reference.item()) < 0.1
