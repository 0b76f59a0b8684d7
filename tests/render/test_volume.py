"""Volume rendering of an SDF (render.volume): gradients, the exact opacity of a linear SDF, a sphere
against ray-sphere intersection, and the ray samples."""

from __future__ import annotations

import pytest
import torch

from render.volume import composite, ray_samples, sdf_opacity


def test_gradients_match_finite_differences():
    generator = torch.Generator().manual_seed(0)
    sdf = torch.linspace(0.3, -0.3, 6, dtype=torch.float64) + 0.05 * torch.randn(
        3, 6, generator=generator, dtype=torch.float64
    )
    colours = torch.rand(3, 5, 3, generator=generator, dtype=torch.float64)
    background = torch.rand(3, 3, generator=generator, dtype=torch.float64)
    sharpness = torch.tensor(8.0, dtype=torch.float64)
    inputs = [x.clone().requires_grad_() for x in (sdf, sharpness, colours, background)]

    def render(sdf, sharpness, colours, background):
        colour, coverage, weights = composite(sdf_opacity(sdf, sharpness), colours, background)
        return colour, coverage, weights

    assert torch.autograd.gradcheck(render, inputs)


@pytest.mark.parametrize("samples", [3, 17, 200])
def test_a_linear_sdf_is_covered_exactly_whatever_the_sampling(samples):
    """For an SDF decreasing linearly along the ray the sections' opacities telescope: what is left
    behind the last sample is Phi(f_S) / Phi(f_0) however the ray is cut (NeuS's unbiased form)."""
    generator = torch.Generator().manual_seed(samples)
    t = torch.sort(torch.rand(4, samples + 1, generator=generator, dtype=torch.float64) * 2, dim=-1).values
    sdf = 1.0 - t  # a plane at t = 1
    sharpness = 5.0
    _, coverage, weights = composite(
        sdf_opacity(sdf, sharpness), torch.ones(4, samples, 1, dtype=torch.float64)
    )
    expected = 1 - torch.sigmoid(sharpness * sdf[:, -1]) / torch.sigmoid(sharpness * sdf[:, 0])
    assert torch.allclose(coverage[:, 0], expected, atol=2e-4 * samples)  # NeuS's 1e-5 per section
    assert bool((weights >= 0).all())


def test_leaving_a_surface_adds_no_opacity_and_the_deep_interior_is_solid():
    leaving = torch.linspace(-0.05, 0.5, 33)[None]  # from just inside to outside
    assert float(sdf_opacity(leaving, 50.0).abs().max()) < 1e-4
    deep = torch.linspace(-0.5, -0.4, 9)[None]
    assert torch.allclose(sdf_opacity(deep, 200.0), torch.ones(1, 8))


def sphere_rays(offsets: torch.Tensor, samples: int):
    """Rays along +z from z = -2 at x = ``offsets``, sampled in the box [-1, 1]^3, through the SDF of a
    sphere of radius 0.5 at the origin."""
    origins = torch.stack((offsets, torch.zeros_like(offsets), torch.full_like(offsets, -2.0)), -1)
    directions = torch.tensor([0.0, 0.0, 1.0]).expand_as(origins)
    lower, upper = torch.full((3,), -1.0), torch.full((3,), 1.0)
    points, t = ray_samples(origins, directions, lower, upper, samples, torch.Generator().manual_seed(0))
    return points, t, points.norm(dim=-1) - 0.5


def test_a_sharp_sphere_is_opaque_where_the_rays_hit_it_and_at_its_surface():
    offsets = torch.tensor([0.0, 0.2, 0.4, 0.6, 0.9])
    points, t, sdf = sphere_rays(offsets, 512)
    red = torch.tensor([1.0, 0.0, 0.0]).expand(len(offsets), 512, 3)
    green = torch.tensor([0.0, 1.0, 0.0]).expand(len(offsets), 3)
    colour, coverage, weights = composite(sdf_opacity(sdf, 2000.0), red, green)
    hit = offsets < 0.5
    assert torch.allclose(coverage[hit, 0], torch.ones(int(hit.sum())), atol=1e-3)
    assert torch.allclose(coverage[~hit, 0], torch.zeros(int((~hit).sum())), atol=0.01)  # 512 x 1e-5
    assert torch.allclose(colour[hit], torch.tensor([1.0, 0.0, 0.0]).expand(int(hit.sum()), 3), atol=1e-3)
    assert torch.allclose(colour[~hit], green[~hit], atol=0.01)
    middles = 0.5 * (t[:, :-1] + t[:, 1:])
    depth = (weights * middles).sum(-1)[hit] / coverage[hit, 0]
    truth = 2.0 - (0.25 - offsets[hit] ** 2).sqrt()  # the first intersection along the ray
    assert torch.allclose(depth, truth, atol=0.01)


def test_low_sharpness_spreads_the_surface_along_the_ray():
    _, _, sdf = sphere_rays(torch.tensor([0.0]), 256)
    ones = torch.ones(1, 256, 1)
    sharp = composite(sdf_opacity(sdf, 2000.0), ones)[2]
    soft = composite(sdf_opacity(sdf, 10.0), ones)[2]
    spread = lambda w: int((w > 0.01 * w.max()).sum())  # noqa: E731
    assert spread(soft) > 5 * spread(sharp)


def test_ray_samples_lie_in_the_box_in_order_and_a_miss_is_empty():
    origins = torch.tensor([[0.0, 0.0, -3.0], [0.0, 5.0, -3.0]])
    directions = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])  # the second misses the box
    points, t = ray_samples(origins, directions, torch.full((3,), -1.0), torch.full((3,), 1.0), 32)
    assert points.shape == (2, 33, 3) and t.shape == (2, 33)
    assert bool((points[0].abs() <= 1 + 1e-6).all()) and bool((t[0, 1:] > t[0, :-1]).all())
    assert float(t[0, 0]) < 2.1 and float(t[0, -1]) > 3.9  # stratified over the segment [2, 4]
    assert float(t[1].max() - t[1].min()) == 0.0
    sdf = points[1].norm(dim=-1)[None] - 0.5
    assert float(sdf_opacity(sdf, 100.0).sum()) < 32 * 1.1e-5  # NeuS's constant alone
