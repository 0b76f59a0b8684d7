"""Mesh renderer: pixels equal direct shading, top row first, gradients reach vertices and the light."""

from __future__ import annotations

import math

import torch

from data.cameras import Camera
from geometry.primitives import uv_sphere
from render.camera import look_at
from render.light import EnvironmentLight, EnvironmentLightConfig
from render.renderer import render_mesh


def setup(size: int = 64):
    vertices, _, faces = uv_sphere(32, 64, 0.5)
    vertices, faces = vertices.float(), faces.long()
    eye = torch.tensor([0.0, -3.0, 0.0])
    focal = 0.5 * size / math.tan(math.radians(20))
    cameras = Camera(
        torch.linalg.inv(look_at(eye, (0, 0, 0), (0, 0, 1)))[None],
        focal,
        focal,
        size / 2,
        size / 2,
        size,
        size,
    )
    light = EnvironmentLight(EnvironmentLightConfig(resolution=16, min_resolution=4))
    with torch.no_grad():
        light.base[4] = 3.0  # +Z (up) brighter: the top of the image must be brighter than the bottom
    return vertices, faces, cameras, light


def material(p, uv):
    return torch.full_like(p, 0.8), torch.full_like(p[:, :1], 0.6), torch.zeros_like(p[:, :1])


def test_pixels_match_direct_shading_and_are_top_down():
    vertices, faces, cameras, light = setup()
    with torch.no_grad():
        out = render_mesh(vertices, faces, cameras.mvp(), cameras.centers, (64, 64), light, material)
        expected = None
    assert out.rgb.shape == (1, 64, 64, 3) and out.alpha.shape == (1, 64, 64, 1)
    # Pixel (row 20, column 32) looks along the ray through its centre; shade that surface point directly.
    origins, directions = cameras.rays()
    o, d = origins[0, 20, 32], directions[0, 20, 32]
    b = float((o * d).sum())
    t = -b - math.sqrt(b * b - float((o * o).sum()) + 0.25)
    p = o + t * d
    with torch.no_grad():
        expected = light.shade(p[None] / 0.5, -d[None], *material(p[None], None))
    torch.testing.assert_close(out.rgb[0, 20, 32], expected[0], rtol=0.02, atol=0.01)
    top, bottom = out.rgb[0, 8:24, 28:36].mean(), out.rgb[0, 40:56, 28:36].mean()
    assert float(top) > float(bottom)  # lit from +Z above: row 0 is the top of the image
    assert float(out.alpha[0, 0, 0]) == 0.0 and float(out.alpha[0, 32, 32]) == 1.0


def test_a_cropped_camera_renders_the_window_of_the_full_image():
    vertices, faces, cameras, light = setup()
    window = cameras.cropped(torch.tensor([20]), torch.tensor([9]), 30, 24)
    with torch.no_grad():
        full = render_mesh(vertices, faces, cameras.mvp(), cameras.centers, (64, 64), light, material)
        part = render_mesh(vertices, faces, window.mvp(), window.centers, (24, 30), light, material)
    torch.testing.assert_close(part.alpha, full.alpha[:, 9:33, 20:50], atol=1e-5, rtol=0)
    torch.testing.assert_close(part.rgb, full.rgb[:, 9:33, 20:50], atol=1e-4, rtol=0)


def test_gradients_reach_vertices_and_light():
    vertices, faces, cameras, light = setup(32)
    vertices = vertices.clone().requires_grad_()
    background = torch.full((1, 1, 1, 3), 0.2)
    out = render_mesh(vertices, faces, cameras.mvp(), cameras.centers, (32, 32), light, material, background)
    out.rgb.sum().backward()
    assert float(vertices.grad.abs().sum()) > 0 and float(light.base.grad.abs().sum()) > 0
    torch.testing.assert_close(out.rgb[0, 0, 0], background[0, 0, 0])
