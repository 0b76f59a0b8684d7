"""Evaluation metrics: PSNR, SSIM (scikit-image), Chamfer distance and F-score against a reference mesh."""

from __future__ import annotations

import numpy as np
import torch
from skimage.metrics import structural_similarity

from geometry.distance import mesh_surface_distances
from recon.losses import psnr


def image_psnr(prediction: torch.Tensor, target: torch.Tensor) -> float:
    """PSNR (dB) of [H, W, 3] images in [0, 1] (display-encoded, as usually reported)."""
    return float(psnr(prediction.clamp(0, 1), target.clamp(0, 1)))


def image_ssim(prediction: torch.Tensor, target: torch.Tensor) -> float:
    """SSIM of [H, W, 3] images in [0, 1] (scikit-image, Gaussian-free 7x7 windows, per channel)."""
    a = prediction.detach().clamp(0, 1).cpu().numpy().astype(np.float64)
    b = target.detach().clamp(0, 1).cpu().numpy().astype(np.float64)
    return float(structural_similarity(a, b, channel_axis=2, data_range=1.0))


def surface_metrics(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    reference_vertices: torch.Tensor,
    reference_faces: torch.Tensor,
    threshold: float,
    samples: int = 20000,
    seed: int = 0,
) -> dict[str, float]:
    """Chamfer-L1 (mean of the two mean point-to-surface distances) and F-score at ``threshold``
    (harmonic mean of the fractions of samples of each surface within ``threshold`` of the other)."""
    generator = torch.Generator().manual_seed(seed)
    to_reference, to_ours = mesh_surface_distances(
        vertices.float(), faces, reference_vertices.float(), reference_faces, samples, generator
    )
    precision = float((to_reference < threshold).float().mean())
    recall = float((to_ours < threshold).float().mean())
    f_score = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {
        "chamfer_l1": 0.5 * float(to_reference.mean() + to_ours.mean()),
        "f_score": f_score,
        "precision": precision,
        "recall": recall,
        "f_score_threshold": threshold,
    }
