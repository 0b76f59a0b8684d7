"""End to end: with known geometry and materials, the light is recovered from a few rendered views."""

import math

import torch

from geometry.primitives import uv_sphere
from render import sh
from render.camera import look_at, perspective, to_clip
from render.envmap import cube_directions, cube_solid_angles
from render.light import EnvironmentLight, EnvironmentLightConfig
from render.raster import interpolate, rasterize
from tests.render.shading_reference import cube_of, sky

RESOLUTION = 32


def _gbuffers(eyes, size=64):
    """Normals, view directions and coverage of a unit sphere rendered from each eye, flattened."""
    vertices, _, tri = uv_sphere(24, 48)
    vertices = vertices.float()
    normals, views = [], []
    for eye in eyes:
        eye = torch.tensor(eye, dtype=torch.float32)
        mvp = perspective(math.radians(40)) @ look_at(eye)
        rast, _ = rasterize(to_clip(vertices, mvp)[None], tri, (size, size))
        pos, _ = interpolate(vertices[None], rast, tri)
        covered = rast[0, ..., 3] > 0
        p = pos[0][covered]
        normals.append(p)  # unit sphere: the normal is the position
        views.append(eye - p)
    return torch.cat(normals), torch.cat(views)


def _sh(cube):
    dirs = cube_directions(RESOLUTION).reshape(-1, 3)
    return sh.project(cube.reshape(-1, 3), dirs, cube_solid_angles(RESOLUTION).reshape(-1))


def test_light_is_learned_from_four_views(report):
    torch.manual_seed(0)
    config = EnvironmentLightConfig(resolution=RESOLUTION, min_resolution=4, irradiance_resolution=8)
    target = EnvironmentLight(config, cube_of(sky, RESOLUTION))
    # Four cameras at the vertices of a tetrahedron, 3.5 units away.
    eyes = [(2.0, 2.0, 2.0), (2.0, -2.0, -2.0), (-2.0, 2.0, -2.0), (-2.0, -2.0, 2.0)]
    normal, view = _gbuffers(eyes)
    count = normal.shape[0]
    base = torch.full((count, 3), 0.6)
    rough = torch.full((count, 1), 0.3)
    metal = torch.full((count, 1), 0.5)
    with torch.no_grad():
        reference = target.shade(normal, view, base, rough, metal)
    light = EnvironmentLight(config)
    optimizer = torch.optim.Adam(light.parameters(), lr=0.05)
    for _ in range(300):
        loss = (light.shade(normal, view, base, rough, metal) - reference).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        light.clamp_()
    learned, truth = light.base.detach(), target.base.detach()
    sh_error = ((_sh(learned) - _sh(truth)).norm() / _sh(truth).norm()).item()
    # Low frequencies: means over 8 x 8 texel blocks (48 directions over the sphere).
    block = lambda c: c.reshape(6, 4, 8, 4, 8, 3).mean((2, 4))  # noqa: E731
    block_error = ((block(learned) - block(truth)).abs().mean() / block(truth).mean()).item()
    report(f"light from 4 views: SH(l<=2) rel. error {sh_error:.3f}, 8x8-block rel. error {block_error:.3f}")
    assert sh_error < 0.02
    assert block_error < 0.03
