"""Image losses, PSNR and weight schedules against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from recon.evaluation.metrics import psnr
from recon.train.losses import image_loss, mask_loss, tonemap
from recon.train.model import SDF_SIGN_DECAY_STEPS, LossConfig


def test_tonemap():
    x = torch.linspace(0, 10, 50)
    y = tonemap(x)
    assert float(y[0]) == 0.0 and bool((y[1:] > y[:-1]).all())  # no saturation: highlights keep gradients


def test_image_losses_by_hand():
    a, b = torch.full((2, 4, 4, 3), 0.5), torch.full((2, 4, 4, 3), 0.25)
    assert float(image_loss(a, b, "l1", tonemapped=False)) == pytest.approx(0.25)
    assert float(image_loss(a, b, "l2", tonemapped=False)) == pytest.approx(0.0625)
    assert float(image_loss(a, b, "logl1", tonemapped=False)) == pytest.approx(math.log(1.5) - math.log(1.25))
    assert float(image_loss(a, b, "smape", tonemapped=False)) == pytest.approx(0.25 / 0.76)
    assert float(image_loss(a, b, "l1")) == pytest.approx(float((tonemap(a) - tonemap(b)).abs().mean()))
    assert float(image_loss(a, a, "smape")) == 0.0
    with pytest.raises(ValueError, match="unknown image loss"):
        image_loss(a, b, "huber")
    assert float(mask_loss(torch.ones(3, 1), torch.zeros(3, 1))) == 1.0


def test_psnr():
    target = torch.zeros(100)
    assert float(psnr(target + 0.1, target)) == pytest.approx(20.0)
    assert float(psnr(target, target)) == pytest.approx(120.0)  # capped, finite


def test_loss_weights_are_numbers_and_the_sdf_sign_weight_falls_to_a_tenth():
    losses = LossConfig(eikonal_weight=0.5)
    assert losses.weight("eikonal", 0) == losses.weight("eikonal", 10_000) == 0.5
    sign = [
        losses.weight("sdf_sign", step) for step in (0, 500, SDF_SIGN_DECAY_STEPS, 5 * SDF_SIGN_DECAY_STEPS)
    ]
    assert sign == pytest.approx([0.01, 0.0055, 0.001, 0.001])
    assert LossConfig(sdf_sign_weight=0.02).weight("sdf_sign", SDF_SIGN_DECAY_STEPS) == pytest.approx(0.002)
