"""Brute-force references written independently of the backends (float64 numpy / torch).

Rasterization is checked against world-space ray casting: a ray from the eye through each pixel
centre is intersected with every triangle (Moller-Trumbore); the nearest hit whose projected depth
lies in [-1, 1] wins. This handles triangles crossing the camera plane with no clipping logic.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from render.camera import look_at, perspective


class Scene:
    """World-space triangles seen by a perspective camera; ``clip`` is the rasterizer input."""

    def __init__(self, vertices, tri, eye=(0.0, 0.0, 4.0), fovy=0.8727, near=0.1, far=20.0):
        self.vertices = np.asarray(vertices, dtype=np.float64)
        self.tri = np.asarray(tri, dtype=np.int64)
        self.eye = np.asarray(eye, dtype=np.float64)
        self.view = look_at(eye, (0, 0, 0), (0, 1, 0)).double().numpy()
        self.proj = perspective(fovy, 1.0, near, far).double().numpy()
        self.mvp = self.proj @ self.view

    @property
    def clip(self) -> torch.Tensor:
        homogeneous = np.concatenate((self.vertices, np.ones((len(self.vertices), 1))), 1)
        return torch.from_numpy(homogeneous @ self.mvp.T)

    def ray_cast(self, height: int, width: int, offset=(0.0, 0.0)):
        """Reference rasterization at pixel centres shifted by ``offset`` pixels.

        Returns:
            ids [H, W] (triangle id + 1, 0 = empty), u [H, W], v [H, W], depth z/w [H, W],
            hit points [H, W, 3] and the smallest barycentric of the hit [H, W] (edge closeness).
        """
        xs = (2 * (np.arange(width) + offset[0]) + 1) / width - 1
        ys = (2 * (np.arange(height) + offset[1]) + 1) / height - 1
        px, py = np.meshgrid(xs, ys)  # row 0 = bottom (NDC y = -1)
        # Eye-space direction through (px, py) for a symmetric perspective projection.
        d_eye = np.stack((px / self.proj[0, 0], py / self.proj[1, 1], -np.ones_like(px)), -1)
        rot = self.view[:3, :3]
        d = d_eye @ rot  # eye -> world (rot is orthonormal: world = rot^T eye)
        a, b, c = (self.vertices[self.tri[:, k]] for k in range(3))  # [F, 3]
        e1, e2 = b - a, c - a
        pvec = np.cross(d[:, :, None, :], e2[None, None])  # [H, W, F, 3]
        det = (e1[None, None] * pvec).sum(-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = 1.0 / det
            tvec = self.eye[None, None, None] - a[None, None]
            bu = (tvec * pvec).sum(-1) * inv
            qvec = np.cross(tvec, e1[None, None])
            bv = (d[:, :, None, :] * qvec).sum(-1) * inv
            t = (e2[None, None] * qvec).sum(-1) * inv
            hit = (np.abs(det) > 1e-300) & (bu >= 0) & (bv >= 0) & (bu + bv <= 1) & (t > 0)
            point = self.eye + t[..., None] * d[:, :, None, :]  # [H, W, F, 3]
            clip = np.concatenate((point, np.ones_like(point[..., :1])), -1) @ self.mvp.T
            depth = clip[..., 2] / clip[..., 3]
        hit &= (depth >= -1) & (depth <= 1)
        key = np.where(hit, depth, np.inf)
        best = key.argmin(-1)
        found = np.isfinite(key.min(-1))
        take = lambda arr: np.take_along_axis(arr, best[..., None], -1)[..., 0]  # noqa: E731
        u = np.where(found, 1 - take(bu) - take(bv), 0.0)  # weight of vertex 0
        v = np.where(found, take(bu), 0.0)  # weight of vertex 1
        ids = np.where(found, best + 1, 0)
        hit_point = np.take_along_axis(point, best[..., None, None], 2)[:, :, 0]
        margin = np.minimum(np.minimum(take(bu), take(bv)), 1 - take(bu) - take(bv))
        return ids, u, v, np.where(found, take(depth), 0.0), hit_point, np.where(found, margin, 1.0)


def random_scene(count: int, seed: int, spread: float = 1.2, size: float = 1.0, **kw) -> Scene:
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-spread, spread, (count, 1, 3))
    vertices = (centres + rng.uniform(-size, size, (count, 3, 3))).reshape(-1, 3)
    return Scene(vertices, np.arange(3 * count).reshape(count, 3), **kw)


# ----------------------------------------------------------------------------------------------
# Texture references (numpy, loops kept explicit)
# ----------------------------------------------------------------------------------------------


def np_downsample(level: np.ndarray) -> np.ndarray:
    """2x2 box filter of [h, w, C]; a side of 1 stays 1."""
    h, w, _ = level.shape
    out_h, out_w = max(1, h // 2), max(1, w // 2)
    out = np.zeros((out_h, out_w, level.shape[2]))
    for i in range(out_h):
        for j in range(out_w):
            rows = [2 * i, 2 * i + 1] if h > 1 else [0]
            cols = [2 * j, 2 * j + 1] if w > 1 else [0]
            out[i, j] = np.mean([level[r, c] for r in rows for c in cols], axis=0)
    return out


def np_fetch(level: np.ndarray, i: int, j: int, boundary: str) -> np.ndarray:
    h, w, _ = level.shape
    if boundary == "wrap":
        return level[i % h, j % w]
    if boundary == "clamp":
        return level[min(max(i, 0), h - 1), min(max(j, 0), w - 1)]
    if 0 <= i < h and 0 <= j < w:
        return level[i, j]
    return np.zeros(level.shape[2])


def np_bilinear(level: np.ndarray, u: float, v: float, boundary: str) -> np.ndarray:
    h, w, _ = level.shape
    x, y = u * w - 0.5, v * h - 0.5
    j0, i0 = math.floor(x), math.floor(y)
    fx, fy = x - j0, y - i0
    return (
        (1 - fx) * (1 - fy) * np_fetch(level, i0, j0, boundary)
        + fx * (1 - fy) * np_fetch(level, i0, j0 + 1, boundary)
        + (1 - fx) * fy * np_fetch(level, i0 + 1, j0, boundary)
        + fx * fy * np_fetch(level, i0 + 1, j0 + 1, boundary)
    )


def np_nearest(level: np.ndarray, u: float, v: float, boundary: str) -> np.ndarray:
    h, w, _ = level.shape
    return np_fetch(level, math.floor(v * h), math.floor(u * w), boundary)


def np_cube_face(d) -> tuple[int, float, float]:
    """OpenGL cube-map face selection (Khronos table): face index and (s, t) in [0, 1]."""
    x, y, z = d
    ax, ay, az = abs(x), abs(y), abs(z)
    if ax >= ay and ax >= az:
        face, sc, tc, ma = (0, -z, -y, ax) if x > 0 else (1, z, -y, ax)
    elif ay >= az:
        face, sc, tc, ma = (2, x, z, ay) if y > 0 else (3, x, -z, ay)
    else:
        face, sc, tc, ma = (4, x, -y, az) if z > 0 else (5, -x, -y, az)
    return face, 0.5 * (sc / ma + 1), 0.5 * (tc / ma + 1)


def np_cube_texel_direction(face: int, i: int, j: int, size: int) -> np.ndarray:
    """World direction through the centre of texel (row i, column j) of a cube face."""
    sc = 2 * (j + 0.5) / size - 1
    tc = 2 * (i + 0.5) / size - 1
    return {
        0: np.array([1.0, -tc, -sc]),
        1: np.array([-1.0, -tc, sc]),
        2: np.array([sc, 1.0, tc]),
        3: np.array([sc, -1.0, -tc]),
        4: np.array([sc, -tc, 1.0]),
        5: np.array([-sc, -tc, -1.0]),
    }[face]
