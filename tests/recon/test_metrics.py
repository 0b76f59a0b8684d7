"""Metrics against hand-checkable cases."""

from __future__ import annotations

import pytest
import torch

from geometry.primitives import uv_sphere
from recon.metrics import image_psnr, image_ssim, surface_metrics


def sphere(radius: float):
    vertices, _, faces = uv_sphere(32, 64, radius)
    return vertices.float(), faces.long()


def test_image_metrics():
    image = torch.rand(32, 32, 3, generator=torch.Generator().manual_seed(0))
    assert image_ssim(image, image) == pytest.approx(1.0)
    assert image_psnr((image + 0.1).clamp(0, 1), image) < image_psnr((image + 0.01).clamp(0, 1), image)
    other = torch.rand(32, 32, 3, generator=torch.Generator().manual_seed(1))
    assert image_ssim(other, image) < 0.2


def test_surface_metrics():
    a, b = sphere(1.0), sphere(1.05)
    same = surface_metrics(*a, *a, threshold=0.01, samples=4000)
    assert same["chamfer_l1"] < 1e-6 and same["f_score"] == 1.0
    apart = surface_metrics(*a, *b, threshold=0.01, samples=4000)
    assert apart["chamfer_l1"] == pytest.approx(0.05, abs=0.003) and apart["f_score"] == 0.0
    loose = surface_metrics(*a, *b, threshold=0.1, samples=4000)
    assert loose["f_score"] == 1.0 and loose["precision"] == loose["recall"] == 1.0
