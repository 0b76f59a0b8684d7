"""OpenGL-convention projection and view matrices (camera looks down -Z, +Y up, +X right)."""

from __future__ import annotations

import math

import torch


def perspective(fovy: float, aspect: float = 1.0, near: float = 0.1, far: float = 100.0) -> torch.Tensor:
    """OpenGL projection [4, 4]: eye space -> clip space, z/w = -1 at ``near`` and +1 at ``far``.

    Args:
        fovy: vertical field of view in radians.
        aspect: width / height.
    """
    f = 1.0 / math.tan(fovy / 2)
    return torch.tensor(
        [
            [f / aspect, 0, 0, 0],
            [0, f, 0, 0],
            [0, 0, (far + near) / (near - far), 2 * far * near / (near - far)],
            [0, 0, -1, 0],
        ],
        dtype=torch.float32,
    )


def look_at(eye, target=(0.0, 0.0, 0.0), up=(0.0, 0.0, 1.0)) -> torch.Tensor:
    """World-to-camera matrix [4, 4] placing the camera at ``eye`` looking at ``target``."""
    eye_t = torch.as_tensor(eye, dtype=torch.float32)
    forward = torch.as_tensor(target, dtype=torch.float32) - eye_t
    forward = forward / forward.norm()
    right = torch.linalg.cross(forward, torch.as_tensor(up, dtype=torch.float32))
    right = right / right.norm()
    true_up = torch.linalg.cross(right, forward)
    view = torch.eye(4)
    view[0, :3], view[1, :3], view[2, :3] = right, true_up, -forward
    view[:3, 3] = -view[:3, :3] @ eye_t
    return view


def to_clip(vertices: torch.Tensor, mvp: torch.Tensor) -> torch.Tensor:
    """Homogeneous clip-space positions [..., V, 4] of ``vertices`` [V, 3] under ``mvp`` [..., 4, 4]."""
    homogeneous = torch.cat((vertices, torch.ones_like(vertices[:, :1])), dim=-1)
    return homogeneous @ mvp.transpose(-1, -2)
