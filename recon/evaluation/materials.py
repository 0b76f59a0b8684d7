"""How right an exported asset's materials are, when the truth is known (recon.scenes.reference): base
colour (albedo), roughness and metallic compared on the true surface, and renders under a second light the
asset never saw.

Points are sampled uniformly on the true surface; each takes the asset's material at the
nearest of a dense sample of the asset's surface (points farther than 1% of the diagonal, where the asset
has no surface, are left out). The base colour is scored as PSNR of sRGB values, after the per-channel
scale that best maps the asset's linear albedo onto the truth (an albedo is only known up to the light's
brightness), and without that scale.
"""

from __future__ import annotations

import math

import torch
from scipy.spatial import cKDTree

from data.images import linear_to_srgb
from geometry.distance import sample_surface
from geometry.mesh import Mesh
from recon.scenes.reference import ReferenceMaterial


def per_channel_scale(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """[C] the least-squares scale s minimizing |s * prediction - target|^2 for each channel of [P, C]."""
    return (prediction * target).sum(0) / (prediction * prediction).sum(0).clamp(min=1e-12)


def _psnr(prediction: torch.Tensor, target: torch.Tensor) -> float:
    mse = float(((prediction - target) ** 2).mean())
    return 10 * math.log10(1 / max(mse, 1e-12))


def material_metrics(asset, reference: ReferenceMaterial, samples: int = 40000, seed: int = 0) -> dict:
    """Albedo PSNR (scaled and not), per-channel albedo scale, roughness and metallic mean absolute error
    of an exported asset (recon.evaluation.evaluate.Asset) against the truth (module docstring)."""
    generator = torch.Generator().manual_seed(seed)
    truth_mesh = reference.mesh
    points, face = sample_surface(truth_mesh.vertices, truth_mesh.faces, samples, generator)
    corners = truth_mesh.vertices[truth_mesh.faces[face]]  # [P, 3, 3]
    weights = _barycentrics(points, corners[:, 0], corners[:, 1], corners[:, 2])
    truth = reference.at(points, _interpolate_uv(truth_mesh, face, weights))
    asset_mesh = Mesh(asset.vertices, asset.faces, asset.uv, asset.uv_faces)
    face, weights, distance = closest_points(asset_mesh, points)
    extent = float((truth_mesh.vertices.max(0).values - truth_mesh.vertices.min(0).values).norm())
    keep = distance < 0.01 * extent
    if not bool(keep.any()):  # the asset is nowhere near the true surface: nothing to compare
        nan = float("nan")
        names = ("albedo_psnr", "albedo_psnr_unscaled", "roughness_mae", "metallic_mae")
        return {**dict.fromkeys(names, nan), "albedo_scale": [nan] * 3, "material_points": 0,
                "material_coverage": 0.0}  # fmt: skip
    with torch.no_grad():
        uv = _interpolate_uv(asset_mesh, face[keep], weights[keep])
        on_asset = (weights[keep, :, None] * asset.vertices[asset.faces[face[keep]]]).sum(1)
        base, roughness, metallic = asset.material(on_asset, uv)[:3]
    target = {name: value[keep] for name, value in truth.items()}
    scale = per_channel_scale(base, target["base_color"])
    as_srgb = lambda x: linear_to_srgb(x.clamp(0, 1))  # noqa: E731
    return {
        "albedo_psnr": _psnr(as_srgb(base * scale), as_srgb(target["base_color"])),
        "albedo_psnr_unscaled": _psnr(as_srgb(base), as_srgb(target["base_color"])),
        "albedo_scale": scale.tolist(),
        "roughness_mae": float((roughness - target["roughness"]).abs().mean()),
        "metallic_mae": float((metallic - target["metallic"]).abs().mean()),
        "material_points": int(keep.sum()),
        "material_coverage": float(keep.float().mean()),
    }


def _barycentrics(points: torch.Tensor, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """[..., 3] barycentrics of the projections of points onto the planes of triangles (a, b, c)."""
    n = torch.cross(b - a, c - a, dim=-1)
    n2 = (n * n).sum(-1).clamp(min=1e-30)
    w1 = (torch.cross(points - a, c - a, dim=-1) * n).sum(-1) / n2
    w2 = (torch.cross(b - a, points - a, dim=-1) * n).sum(-1) / n2
    return torch.stack((1 - w1 - w2, w1, w2), -1)


def closest_points(mesh: Mesh, points: torch.Tensor, candidates: int = 8) -> tuple:
    """For points [P, 3]: the face [P] of ``mesh`` nearest to each (among the ``candidates`` faces with the
    nearest centroids), barycentrics [P, 3] of the nearest point on it (the projection, clamped into the
    triangle) and the distance [P]."""
    corners = mesh.vertices[mesh.faces]  # [F, 3, 3]
    _, near = cKDTree(corners.mean(1).numpy()).query(points.numpy(), k=min(candidates, len(mesh.faces)))
    near = torch.from_numpy(near.reshape(len(points), -1))
    a, b, c = (corners[near][..., k, :] for k in range(3))  # [P, K, 3]
    weights = _barycentrics(points[:, None], a, b, c).clamp(min=0)
    weights = weights / weights.sum(-1, keepdim=True).clamp(min=1e-12)
    nearest = weights[..., :1] * a + weights[..., 1:2] * b + weights[..., 2:] * c
    distance = (nearest - points[:, None]).norm(dim=-1)
    best = distance.argmin(1)
    pick = torch.arange(len(points))
    return near[pick, best], weights[pick, best], distance[pick, best]


def _interpolate_uv(mesh: Mesh, face: torch.Tensor, weights: torch.Tensor) -> torch.Tensor | None:
    """[P, 2] texture coordinates at barycentrics [P, 3] of faces [P] of ``mesh``."""
    if mesh.uv is None:
        return None
    uv_faces = mesh.uv_faces if mesh.uv_faces is not None else mesh.faces
    return (weights[..., None] * mesh.uv[uv_faces[face]]).sum(1)


def scaled_psnr(rendered: torch.Tensor, reference: torch.Tensor, alpha: torch.Tensor) -> tuple[float, list]:
    """PSNR (sRGB) of linear images [B, H, W, 3] after the per-channel scale fitted on the object's pixels
    (alpha [B, H, W, 1] > 0.5) of all views together, and that scale."""
    inside = alpha[..., 0] > 0.5
    scale = per_channel_scale(rendered[inside], reference[inside])
    scaled = torch.where(inside[..., None], rendered * scale, rendered)
    return _psnr(linear_to_srgb(scaled.clamp(0, 1)), linear_to_srgb(reference.clamp(0, 1))), scale.tolist()
