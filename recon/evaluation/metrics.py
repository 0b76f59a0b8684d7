"""Evaluation metrics: PSNR, SSIM (scikit-image), Chamfer distance and F-score against a reference mesh, and
which of its surface the training views see."""

from __future__ import annotations

import numpy as np
import torch
from skimage.metrics import structural_similarity

from data.cameras import Camera
from geometry import cpu_threads
from geometry.distance import point_mesh_distance, sample_surface
from geometry.mesh import face_normals
from render.camera import to_clip
from render.raster import interpolate, rasterize

SEEN_MIN_VIEWS = 2
"""A reference surface point counts as seen when at least this many training views see it: two views are
what fixes a point's depth by parallax (one view leaves it anywhere along its ray)."""


def psnr(prediction: torch.Tensor, target: torch.Tensor, peak: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio (dB) of images in [0, peak]."""
    mse = (prediction - target).square().mean().clamp_min(1e-12)
    return 10 * torch.log10(peak * peak / mse)


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
    cameras: Camera | None = None,
) -> dict[str, float]:
    """Chamfer-L1 (mean of the two mean point-to-surface distances) and F-score at ``threshold``
    (harmonic mean of the fractions of samples of each surface within ``threshold`` of the other).

    With the training ``cameras`` (world units, the reference's frame) also ``seen_fraction``, the share of
    the reference surface that at least :data:`SEEN_MIN_VIEWS` of them see (:func:`views_seeing`), and
    ``recall_seen``, the recall over that share alone: what the images determine, apart from the surface
    no view shows (the floor of a deep pocket), which only a prior can place."""
    generator = torch.Generator().manual_seed(seed)
    vertices, reference_vertices = vertices.detach().float(), reference_vertices.detach().float()
    on_ours = sample_surface(vertices, faces, samples, generator)[0]
    on_reference, reference_face = sample_surface(reference_vertices, reference_faces, samples, generator)
    to_reference = point_mesh_distance(on_ours, reference_vertices, reference_faces)
    to_ours = point_mesh_distance(on_reference, vertices, faces)
    precision = float((to_reference < threshold).float().mean())
    recall = float((to_ours < threshold).float().mean())
    f_score = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    metrics = {
        "chamfer_l1": 0.5 * float(to_reference.mean() + to_ours.mean()),
        "f_score": f_score,
        "precision": precision,
        "recall": recall,
        "f_score_threshold": threshold,
    }
    if cameras is not None:
        normals = face_normals(reference_vertices, reference_faces)[reference_face]
        seen = (
            views_seeing(on_reference, normals, reference_vertices, reference_faces, cameras)
            >= SEEN_MIN_VIEWS
        )
        metrics["seen_fraction"] = float(seen.float().mean())
        metrics["recall_seen"] = (
            float((to_ours[seen] < threshold).float().mean()) if bool(seen.any()) else 0.0
        )
    return metrics


def views_seeing(
    points: torch.Tensor,
    normals: torch.Tensor,
    vertices: torch.Tensor,
    faces: torch.Tensor,
    cameras: Camera,
    tolerance_pixels: float = 2.0,
) -> torch.Tensor:
    """[P] how many of ``cameras`` see each point of a mesh's surface.

    Args:
        points: [P, 3] on the surface of the mesh ``vertices`` [V, 3], ``faces`` [F, 3] (world units);
            normals: [P, 3] its outward normals there.
        cameras: the views (world units).
        tolerance_pixels: how far in front of a point (in pixel footprints at its distance) the surface
            seen through its pixel may lie and still count as the point itself.
    A view sees a point when the point projects inside its image, faces it, and the first surface along
    the point's pixel ray (the mesh rasterized in that view) is the point's own, within the tolerance
    (divided by the cosine of the viewing angle, as grazing views change depth fast across a pixel).
    """
    counts = torch.zeros(len(points), dtype=torch.long)
    triangles = faces.to(torch.int32).contiguous()
    for view in range(len(cameras)):
        cpu_threads.adapt()
        camera = cameras[view]
        clip = to_clip(vertices, camera.mvp()).contiguous()
        rast, _ = rasterize(clip, triangles, (camera.height, camera.width))
        first, _ = interpolate(vertices[None].contiguous(), rast, triangles)
        first = torch.flip(first[0], dims=[0])  # rasterizer row 0 is the bottom; image row 0 the top
        covered = torch.flip(rast[0, ..., 3], dims=[0]) > 0
        pixels, depth = camera.project(points)
        pixels, depth = pixels[0], depth[0]
        column, row = pixels[:, 0].floor().long(), pixels[:, 1].floor().long()
        inside = (column >= 0) & (column < camera.width) & (row >= 0) & (row < camera.height) & (depth > 0)
        column, row = column.clamp(0, camera.width - 1), row.clamp(0, camera.height - 1)
        centre = camera.centers[0]
        towards = centre - points
        distance = towards.norm(dim=-1)
        cosine = (normals * towards).sum(-1) / distance.clamp(min=1e-12)
        # Across a pixel the surface's distance changes by a footprint / cosine: at grazing angles more.
        tolerance = tolerance_pixels * depth.clamp(min=0) / camera.fx[0] / cosine.clamp(min=0.1)
        nearest = torch.where(
            covered[row, column],
            (first[row, column] - centre).norm(dim=-1),
            torch.full_like(distance, torch.inf),
        )  # a pixel that the mesh does not cover (a silhouette's edge) hides nothing
        counts += (inside & (cosine > 0) & (nearest > distance - tolerance)).long()
    return counts
