"""Lens distortion (OpenCV radial-tangential, as COLMAP and nerfstudio write it) and image undistortion.

Images are undistorted on load into an ideal pinhole image with the same fx, fy, cx, cy: each output
pixel looks up its distorted position in the source (bilinear), so every other part of the project
sees pinhole cameras only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class Distortion:
    """x_d = x (1 + k1 r^2 + k2 r^4) + 2 p1 x y + p2 (r^2 + 2 x^2), y likewise, on normalized coordinates."""

    k1: float = 0.0
    k2: float = 0.0
    p1: float = 0.0
    p2: float = 0.0

    @property
    def is_identity(self) -> bool:
        return self.k1 == self.k2 == self.p1 == self.p2 == 0.0

    def apply(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Distort normalized coordinates (x right, y down, as OpenCV)."""
        r2 = x * x + y * y
        radial = 1 + self.k1 * r2 + self.k2 * r2 * r2
        xd = x * radial + 2 * self.p1 * x * y + self.p2 * (r2 + 2 * x * x)
        yd = y * radial + self.p1 * (r2 + 2 * y * y) + 2 * self.p2 * x * y
        return xd, yd


def undistort(
    image: np.ndarray, distortion: Distortion, fx: float, fy: float, cx: float, cy: float
) -> np.ndarray:
    """Undistort a uint8 [H, W, C] image into the pinhole image with the same intrinsics (bilinear;
    pixels that map outside the source get alpha 0 when C = 4, else 0)."""
    if distortion.is_identity:
        return image
    height, width = image.shape[:2]
    y, x = torch.meshgrid(
        torch.arange(height, dtype=torch.float64) + 0.5,
        torch.arange(width, dtype=torch.float64) + 0.5,
        indexing="ij",
    )
    xd, yd = distortion.apply((x - cx) / fx, (y - cy) / fy)
    u, v = xd * fx + cx, yd * fy + cy  # source pixel coordinates (centres at +0.5)
    grid = torch.stack((2 * u / width - 1, 2 * v / height - 1), -1)[None].float()
    source = torch.from_numpy(image).float().permute(2, 0, 1)[None]
    out = torch.nn.functional.grid_sample(
        source, grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    return (out[0].permute(1, 2, 0) + 0.5).clamp(0, 255).to(torch.uint8).numpy()
