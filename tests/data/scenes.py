"""A small synthetic capture (cameras on a sphere around known points, noise images) for format tests."""

from __future__ import annotations

import math

import numpy as np
import torch

from data.cameras import Camera
from render.camera import look_at

WIDTH, HEIGHT = 40, 30


def ring_cameras(n: int = 10, radius: float = 3.0, centre=(0.2, -0.1, 0.3), focal: float = 45.0) -> Camera:
    """``n`` cameras on a tilted ring looking at ``centre``; centred principal point, fx = fy."""
    c2w = []
    for i in range(n):
        angle = 2 * math.pi * i / n
        eye = torch.tensor(centre) + radius * torch.tensor(
            [math.cos(angle), math.sin(angle), 0.4 + 0.3 * math.sin(3 * angle)]
        )
        c2w.append(torch.linalg.inv(look_at(eye, centre, (0, 0, 1))))
    return Camera(torch.stack(c2w), focal, focal, WIDTH / 2, HEIGHT / 2, WIDTH, HEIGHT)


def noise_images(n: int, seed: int = 0, alpha: bool = True) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, HEIGHT, WIDTH, 4), dtype=np.uint8)
    if not alpha:
        images[..., 3] = 255
    return list(images)


def known_points(seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(
        np.random.default_rng(seed).uniform(-0.5, 0.5, size=(50, 3))
    ).float() + torch.tensor([0.2, -0.1, 0.3])
