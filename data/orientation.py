"""The world's up axis, and the rotations exports need from it (docs/design.md, "glTF axes").

NeRF-synthetic (Blender) worlds are +Z up by convention. Formats without a known up (COLMAP, LLFF,
nerfstudio) get it estimated from the cameras: people hold cameras upright, so the mean of the cameras'
up vectors (+Y of OpenGL camera axes) points to the world's up (nerfstudio's "up" orientation).
"""

from __future__ import annotations

import torch

from data.cameras import Camera

Z_UP = (0.0, 0.0, 1.0)

# glTF is +Y up: (x, y, z) of a +Z-up world -> (x, z, -y), the inverse of what Blender's importer does.
Z_UP_TO_Y_UP = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]], dtype=torch.float64)


def estimate_up(cameras: Camera) -> tuple[float, float, float]:
    """The unit mean of the cameras' up vectors (c2w [:3, 1]); +Z when they cancel out."""
    up = cameras.c2w[:, :3, 1].double().mean(0)
    if float(up.norm()) < 1e-6:
        return Z_UP
    return tuple((up / up.norm()).tolist())


def rotation_to_z_up(up) -> torch.Tensor:
    """[3, 3] float64: the smallest rotation taking the unit vector ``up`` to +Z (Rodrigues)."""
    a = torch.as_tensor(up, dtype=torch.float64)
    a = a / a.norm()
    z = torch.tensor(Z_UP, dtype=torch.float64)
    axis = torch.linalg.cross(a, z)
    sin, cos = float(axis.norm()), float(a @ z)
    if sin < 1e-12:
        if cos > 0:
            return torch.eye(3, dtype=torch.float64)
        return torch.diag(torch.tensor([1.0, -1.0, -1.0], dtype=torch.float64))  # half turn about +X
    k = axis / sin
    skew = torch.tensor([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]], dtype=torch.float64)
    return torch.eye(3, dtype=torch.float64) + sin * skew + (1 - cos) * (skew @ skew)


def world_to_gltf(up) -> torch.Tensor:
    """[3, 3] float64 rotation from the dataset's world to glTF axes: ``up`` -> +Y."""
    return Z_UP_TO_Y_UP @ rotation_to_z_up(up)
