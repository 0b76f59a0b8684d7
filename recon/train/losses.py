"""Image losses (on tonemapped colour, as nvdiffrec), the mask loss and weight schedules."""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass
class Schedule:
    """A loss weight over training steps: linear warm-up from ``start`` to ``weight`` over
    ``warmup_steps``, constant, then linear decay to ``end`` between ``decay_start`` and ``decay_end``
    (decay disabled when decay_end <= decay_start)."""

    weight: float = 1.0
    start: float | None = None
    warmup_steps: int = 0
    end: float | None = None
    decay_start: int = 0
    decay_end: int = 0

    def __call__(self, step: int) -> float:
        value = self.weight
        if self.warmup_steps > 0 and step < self.warmup_steps:
            start = self.weight if self.start is None else self.start
            value = start + (self.weight - start) * step / self.warmup_steps
        if self.decay_end > self.decay_start and step > self.decay_start:
            end = self.weight if self.end is None else self.end
            t = min(1.0, (step - self.decay_start) / (self.decay_end - self.decay_start))
            value = self.weight + (end - self.weight) * t
        return value
