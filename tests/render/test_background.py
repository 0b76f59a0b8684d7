"""The backdrop of photos: ray-plane hits, the ground texture, the light seen directly, compositing."""

from __future__ import annotations

import math

import torch

from render.background import (
    Backdrop,
    GroundPlane,
    background_radiance,
    environment_radiance,
    plane_axes,
    ray_plane_hits,
)
from render.envmap import latlong_directions
from render.light import EnvironmentLight, EnvironmentLightConfig
from render.renderer import RenderOutput


def test_ray_plane_hits_from_above_only():
    origins = torch.tensor([[0.0, 0.0, 2.0], [0.0, 0.0, 2.0], [0.0, 0.0, -1.0], [1.0, 0.0, 1.0]])
    directions = torch.nn.functional.normalize(
        torch.tensor([[0.0, 0.0, -1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 0.0, -1.0]]), dim=-1
    )
    points, hit = ray_plane_hits(origins, directions, torch.zeros(3), torch.tensor([0.0, 0.0, 1.0]))
    assert hit.tolist() == [True, False, False, True]  # down from above; up; from below; oblique
    assert torch.allclose(points[0], torch.zeros(3), atol=1e-6)
    assert torch.allclose(points[3], torch.tensor([2.0, 0.0, 0.0]), atol=1e-6)


def test_plane_axes_are_orthonormal_and_right_handed():
    for normal in (
        torch.tensor([0.0, 0.0, 1.0]),
        torch.nn.functional.normalize(torch.tensor([1.0, 0.2, 0.1]), dim=0),
    ):
        u, v = plane_axes(normal)
        assert torch.allclose(
            torch.stack((u @ u, v @ v, u @ v, u @ normal)), torch.tensor([1.0, 1.0, 0, 0]), atol=1e-6
        )
        assert torch.allclose(torch.linalg.cross(u, v), normal, atol=1e-6)


def test_ground_texture_is_bilinear_in_plane_coordinates_and_limited_to_the_disk():
    texture = torch.arange(16.0).reshape(4, 4, 1).expand(4, 4, 3).contiguous()
    ground = GroundPlane(torch.zeros(3), torch.tensor([0.0, 0.0, 1.0]), 2.0, initial=texture)
    u, v = ground.axes
    # the centre of texel (row 1, column 2): ((2 + 0.5) / 4 * 2 - 1, (1 + 0.5) / 4 * 2 - 1) * radius
    point = (0.25 * u - 0.25 * v) * 2.0
    assert torch.allclose(ground.radiance(point[None]), torch.full((1, 3), 6.0), atol=1e-5)
    halfway = (0.0 * u - 0.25 * v) * 2.0  # between columns 1 and 2 of row 1
    assert torch.allclose(ground.radiance(halfway[None]), torch.full((1, 3), 5.5), atol=1e-5)
    origins = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    directions = torch.nn.functional.normalize(torch.tensor([[0.5, 0.0, -1.0], [3.0, 0.0, -1.0]]), dim=-1)
    _, hit = ground.hits(origins, directions)
    assert hit.tolist() == [True, False]  # 0.5 inside the radius 2, 3 outside


def test_environment_radiance_is_the_light_seen_directly():
    latlong = latlong_directions(32)[..., :3].abs() + 0.1  # smooth, direction-dependent radiance
    light = EnvironmentLight.from_latlong(latlong, EnvironmentLightConfig(resolution=32))
    directions = torch.nn.functional.normalize(torch.randn(200, 3), dim=-1)
    seen = environment_radiance(light, directions)
    assert (seen - (directions.abs() + 0.1)).abs().mean() < 0.02


def test_background_radiance_gradients_reach_the_texture_and_the_light():
    light = EnvironmentLight(EnvironmentLightConfig(resolution=8)).double()
    base = light.base.detach().clone() + torch.rand_like(light.base)
    texture = torch.rand(8, 8, 3, dtype=torch.float64)
    ground = GroundPlane(torch.zeros(3), torch.tensor([0.0, 0.0, 1.0]), 2.0, initial=texture).double()
    origins = torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64).expand(6, 3)
    directions = torch.nn.functional.normalize(torch.randn(6, 3, dtype=torch.float64), dim=-1)
    directions[:3, 2] = -directions[:3, 2].abs()  # half of them look down at the disk
    directions = torch.nn.functional.normalize(directions, dim=-1)

    del ground.texture, light.base  # plain tensors in their place, so that gradcheck's inputs are used

    def function(texels, base):
        ground.texture, light.base = texels, base
        return background_radiance(origins, directions, light, ground)

    assert torch.autograd.gradcheck(
        function, (texture.clone().requires_grad_(), base.requires_grad_()), eps=1e-6, atol=1e-6
    )


def test_backdrop_composites_the_render_over_what_the_rays_see():
    class Cameras:
        def rays(self):
            origins = torch.tensor([0.0, 0.0, 1.0]).expand(1, 2, 2, 3)
            directions = torch.tensor(
                [[[0.0, 0.0, -1.0], [0.0, 0.0, 1.0]], [[0.0, 0.0, -1.0], [0.0, 0.0, 1.0]]]
            )
            return origins, directions[None]

    ground = GroundPlane(
        torch.zeros(3), torch.tensor([0.0, 0.0, 1.0]), 1.0, initial=torch.full((4, 4, 3), 0.25)
    )
    light = EnvironmentLight(EnvironmentLightConfig(resolution=8, initial_radiance=2.0))
    alpha = torch.tensor([[[[0.0], [0.0]], [[0.5], [1.0]]]])
    rgb = torch.tensor([[[[0.0] * 3, [0.0] * 3], [[0.3] * 3, [0.7] * 3]]])  # premultiplied, over black
    out = RenderOutput(rgb, alpha, rgb, rgb, rgb)
    composited = Backdrop(ground)(out, Cameras(), light).rgb[0, ..., 0]
    expected = torch.tensor([[0.25, 2.0], [0.3 + 0.5 * 0.25, 0.7]])  # table below, sky above
    assert torch.allclose(composited, expected, atol=1e-5)
    state = Backdrop(ground).state_dict()
    rebuilt = Backdrop.from_state(state)
    assert rebuilt.ground is not None and math.isclose(rebuilt.ground.radius, 1.0)
    assert torch.equal(rebuilt.ground.texture, ground.texture)
