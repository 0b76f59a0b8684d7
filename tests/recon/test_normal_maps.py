"""Normal maps in training: the stage-1 "offset" perturbation, its bake into a tangent-space texture (the
renderer must see the same normals either way), and a stage-2 normal texture learned from images."""

from __future__ import annotations

import math

import torch

from data.cameras import Camera
from data.images import linear_to_srgb
from geometry.marching_cubes import marching_cubes
from geometry.mesh import unwrap_uv
from recon.asset.bake import bake_textures
from recon.asset.texture_material import TextureMaterial
from recon.evaluation.metrics import image_psnr
from recon.train.material import MaterialConfig, MaterialMLP
from render.camera import look_at
from render.envmap import latlong_directions
from render.light import EnvironmentLight, EnvironmentLightConfig
from render.renderer import render_views


class RippledMaterial:
    """A constant rough material whose normals ripple: a world-space offset (render.renderer "offset")."""

    normal_mode = "offset"

    def __call__(self, p: torch.Tensor, uv=None):
        ones = torch.ones_like(p[:, :1])
        offset = 0.35 * torch.stack(
            (torch.sin(9 * p[:, 1]), torch.cos(8 * p[:, 2]), torch.sin(7 * p[:, 0])), -1
        )
        return 0.6 * ones.expand(-1, 3), 0.5 * ones, 0 * ones, offset


def _scene(size: int = 96):
    axis = torch.linspace(-1, 1, 33)
    grid = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), -1)
    vertices, faces = marching_cubes(grid.norm(dim=-1) - 0.7)
    c2w = []
    for k in range(4):
        angle = 2 * math.pi * k / 4 + 0.4
        eye = torch.tensor([2.6 * math.cos(angle), 2.6 * math.sin(angle), 0.9])
        c2w.append(torch.linalg.inv(look_at(eye, torch.zeros(3), (0, 0, 1))))
    focal = size / (2 * math.tan(math.radians(20)))
    cameras = Camera(torch.stack(c2w), focal, focal, size / 2, size / 2, size, size)
    d = latlong_directions(32)
    lobe = (d @ torch.nn.functional.normalize(torch.tensor([0.4, -0.5, 0.7]), dim=0)).clamp(min=0)
    light = EnvironmentLight.from_latlong(
        0.1 + 2 * lobe[..., None] ** 2 * torch.ones(3), EnvironmentLightConfig(32)
    )
    return vertices, faces, cameras, light


def test_baked_normal_map_shades_like_the_offset_it_came_from(report):
    vertices, faces, cameras, light = _scene()
    uv, uv_faces = unwrap_uv(vertices, faces, resolution=512)
    material = RippledMaterial()
    textures = bake_textures(material, vertices, faces, uv, uv_faces, resolution=512)
    assert textures.normal is not None and torch.allclose(textures.normal.norm(dim=-1), torch.ones(512, 512))
    baked = TextureMaterial(textures)
    with torch.no_grad():
        direct = render_views(vertices, faces, cameras, light, material, uv=uv, uv_faces=uv_faces)
        via_texture = render_views(vertices, faces, cameras, light, baked, uv=uv, uv_faces=uv_faces)
        baked.normal_map = None
        flat = render_views(vertices, faces, cameras, light, baked, uv=uv, uv_faces=uv_faces)
    srgb = linear_to_srgb
    agree = sum(image_psnr(srgb(via_texture.rgb[v]), srgb(direct.rgb[v])) for v in range(4)) / 4
    effect = sum(image_psnr(srgb(flat.rgb[v]), srgb(direct.rgb[v])) for v in range(4)) / 4
    report(
        f"normal offset baked into a 512^2 tangent-space map: {agree:.1f} dB vs the offset itself "
        f"(flat: {effect:.1f} dB)"
    )
    assert agree > 38.0 and effect < agree - 10.0


def test_material_mlp_normal_perturbation_is_bounded_and_smoothed():
    mlp = MaterialMLP(MaterialConfig(normal_perturbation=True, max_normal_offset=0.3), seed=0)
    points = torch.rand(256, 3) * 2 - 1
    sample = mlp(points)
    assert sample.normal is not None and sample.normal.shape == (256, 3)
    assert float(sample.normal.abs().max()) <= 0.3
    assert len(tuple(sample)) == 4 and MaterialMLP.normal_mode == "offset"
    loss = mlp.smoothness_loss(points, generator=torch.Generator().manual_seed(0))
    loss.backward()
    assert mlp.mlp[-1].weight.grad[5:].abs().sum() > 0  # the normal outputs are regularized too
    assert mlp(points).normal is not None and MaterialMLP(MaterialConfig(), seed=0)(points).normal is None


def test_stage2_normal_texture_learns_the_ripples(report):
    """Fit a flat normal texture to images of the rippled sphere (material and light known)."""
    vertices, faces, cameras, light = _scene(size=64)
    uv, uv_faces = unwrap_uv(vertices, faces, resolution=128)
    target_material = RippledMaterial()
    with torch.no_grad():
        target = render_views(vertices, faces, cameras, light, target_material, uv=uv, uv_faces=uv_faces).rgb
    textures = bake_textures(lambda p: target_material(p)[:3], vertices, faces, uv, uv_faces, resolution=128)
    material = TextureMaterial(textures, normal_map=True)
    optimizer = torch.optim.Adam([material.normal_map], lr=0.02)
    losses = []
    for _ in range(60):
        out = render_views(vertices, faces, cameras, light, material, uv=uv, uv_faces=uv_faces)
        loss = (out.rgb - target).abs().mean() + 0.01 * material.normal_smoothness()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        material.clamp_()
        losses.append(float(loss))
    with torch.no_grad():
        fitted = render_views(vertices, faces, cameras, light, material, uv=uv, uv_faces=uv_faces).rgb
    psnrs = [image_psnr(linear_to_srgb(fitted[v]), linear_to_srgb(target[v])) for v in range(4)]
    report(
        f"stage-2 normal texture fit, 60 steps: L1 {losses[0]:.4f} -> {losses[-1]:.4f}, "
        f"{sum(psnrs) / 4:.1f} dB"
    )
    assert losses[-1] < 0.5 * losses[0]
