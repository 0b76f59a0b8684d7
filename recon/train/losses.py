"""Image losses (on tonemapped colour, as nvdiffrec) and the mask loss."""

from __future__ import annotations

import torch

from data.images import srgb_curve

IMAGE_LOSSES = ("l1", "l2", "logl1", "smape")


def tonemap(x: torch.Tensor) -> torch.Tensor:
    """sRGB(log(1 + x)) with the sRGB curve continued above 1: compresses highlights so they do not
    dominate the loss while keeping their gradients (nvdiffrec's tonemapped loss)."""
    return srgb_curve(torch.log1p(x.clamp(min=0)))


def image_loss(prediction: torch.Tensor, target: torch.Tensor, kind: str = "l1", tonemapped: bool = True):
    """Mean loss between linear RGB images [..., 3]; ``kind`` in IMAGE_LOSSES."""
    if kind not in IMAGE_LOSSES:
        raise ValueError(f"loss: unknown image loss {kind!r} (known: {', '.join(IMAGE_LOSSES)})")
    if tonemapped:
        prediction, target = tonemap(prediction), tonemap(target)
    if kind == "l1":
        return (prediction - target).abs().mean()
    if kind == "l2":
        return (prediction - target).square().mean()
    if kind == "logl1":
        return (torch.log1p(prediction.clamp(min=0)) - torch.log1p(target.clamp(min=0))).abs().mean()
    return ((prediction - target).abs() / (prediction.abs() + target.abs() + 1e-2)).mean()


def mask_loss(alpha: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error between rendered coverage and the mask, [..., 1] each."""
    return (alpha - target).square().mean()
