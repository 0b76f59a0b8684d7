import math

import pytest
import torch

import render.raster as R
from geometry.primitives import uv_sphere
from render.camera import look_at, perspective, to_clip
from render.raster.torch_backend import construct_topology


def _clip2d(points, w=None):
    """Clip-space [1, V, 4] from NDC points [V, 2] (z = 0, w = 1 unless given)."""
    pts = torch.as_tensor(points, dtype=torch.float64)
    w = torch.ones(len(pts), dtype=torch.float64) if w is None else torch.as_tensor(w, dtype=torch.float64)
    return torch.stack((pts[:, 0] * w, pts[:, 1] * w, torch.zeros_like(w), w), -1)[None].contiguous()


def test_topology_table():
    tri = torch.tensor([[0, 1, 2], [2, 1, 3], [3, 4, 2], [4, 3, 5], [3, 4, 6]], dtype=torch.int32)
    opp = construct_topology(tri).tolist()
    # triangle 0 edges: (0,1) boundary, (1,2) shared with triangle 1 whose third vertex is 3, (2,0) boundary
    assert opp[0] == [-1, 3, -1]
    # triangle 1 edges: (2,1) -> 0, (1,3) boundary, (3,2) -> triangle 2's third vertex 4
    assert opp[1] == [0, -1, 4]
    # edge (3,4) is shared by triangles 2, 3 and 4: non-manifold, so -1 everywhere on it
    assert opp[2][0] == -1 and opp[3][0] == -1 and opp[4][0] == -1


def _supersampled_coverage(pos, tri, size, factor=16):
    rast, _ = R.rasterize(pos.float(), tri, (size * factor, size * factor), backend="torch")
    cov = (rast[0, ..., 3] > 0).double()
    return cov.reshape(size, factor, size, factor).mean((1, 3))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_slanted_edge_coverage_error_halves(seed):
    gen = torch.Generator().manual_seed(seed)
    # A big triangle whose silhouette edges run at assorted slants through a 32x32 image.
    pts = torch.tensor([[-0.8, -0.7], [0.75, -0.4], [-0.1, 0.8]], dtype=torch.float64)
    pts = pts + (torch.rand(3, 2, generator=gen, dtype=torch.float64) - 0.5) * 0.3
    pos = _clip2d(pts)
    tri = torch.tensor([[0, 1, 2]], dtype=torch.int32)
    size = 32
    rast, _ = R.rasterize(pos, tri, (size, size), backend="torch")
    color = (rast[..., 3:] > 0).double()
    aa = R.antialias(color, rast, pos, tri, backend="torch")[0, ..., 0]
    ref = _supersampled_coverage(pos, tri, size)
    err_plain = (color[0, ..., 0] - ref).abs().sum()
    err_aa = (aa - ref).abs().sum()
    assert err_aa <= 0.5 * err_plain, (float(err_aa), float(err_plain))


def test_interior_edges_are_not_blended():
    vertices, _, tri = uv_sphere(24, 48)
    mvp = perspective(math.radians(40)) @ look_at((0.3, 0.2, 3.5), (0, 0, 0), (0, 1, 0))
    pos = to_clip(vertices, mvp)[None].contiguous()
    rast, _ = R.rasterize(pos, tri, (96, 96), backend="torch")
    color, _ = R.interpolate(vertices[None] * 0.5 + 0.5, rast, tri)
    out = R.antialias(color, rast, pos, tri, backend="torch")
    changed = (out - color).abs().amax(-1)[0] > 0
    covered = rast[0, ..., 3] > 0
    pad = torch.nn.functional.pad((~covered).float()[None, None], (1, 1, 1, 1), value=1.0)[0, 0] > 0
    near_background = pad[:-2, 1:-1] | pad[2:, 1:-1] | pad[1:-1, :-2] | pad[1:-1, 2:] | ~covered
    assert changed.any()
    assert not (changed & ~near_background).any(), "AA touched pixels away from the silhouette"


def test_gradcheck_color_and_positions():
    # Two overlapping triangles over background: silhouettes against background and against a surface.
    pos = torch.tensor(
        [[-0.83, -0.71, 0.2, 1.0], [0.77, -0.52, 0.2, 1.1], [-0.12, 0.84, 0.2, 0.95],
         [-0.35, -0.93, -0.5, 1.0], [0.91, 0.13, -0.5, 1.2], [0.22, 0.71, -0.5, 0.9]],
        dtype=torch.float64,
    )[None].requires_grad_(True)  # fmt: skip
    tri = torch.tensor([[0, 1, 2], [3, 4, 5]], dtype=torch.int32)
    rast, _ = R.rasterize(pos.detach(), tri, (9, 10), backend="torch")
    assert set(rast[..., 3].unique().tolist()) == {0.0, 1.0, 2.0}
    color = torch.rand(1, 9, 10, 2, dtype=torch.float64, requires_grad=True)
    fn = lambda c, p: R.antialias(c, rast, p, tri, backend="torch")  # noqa: E731
    assert torch.autograd.gradcheck(fn, (color, pos), eps=1e-6, atol=1e-6)
    # and the position gradient is really exercised
    R.antialias(color, rast, pos, tri).sum().backward()
    assert pos.grad[..., :2].abs().sum() > 0


def test_coverage_gradient_matches_area_growth():
    # Scaling a triangle by s about its centroid grows its area as s^2: d(area)/ds = 2 * area at s = 1.
    base = torch.tensor([[-0.61, -0.52], [0.58, -0.31], [0.07, 0.66]], dtype=torch.float64)
    centre = base.mean(0)
    scale = torch.ones((), dtype=torch.float64, requires_grad=True)
    pos = _clip2d(centre + (base - centre) * scale)
    tri = torch.tensor([[0, 1, 2]], dtype=torch.int32)
    size = 64
    rast, _ = R.rasterize(pos.detach(), tri, (size, size), backend="torch")
    color = (rast[..., 3:] > 0).double()
    R.antialias(color, rast, pos, tri).sum().backward()
    e1, e2 = base[1] - base[0], base[2] - base[0]
    area_pixels = 0.5 * abs(float(e1[0] * e2[1] - e1[1] * e2[0])) * (size / 2) ** 2
    assert scale.grad.item() == pytest.approx(2 * area_pixels, rel=0.05)


def test_pos_gradient_boost_scales_only_position_gradients():
    pos = _clip2d([[-0.7, -0.6], [0.8, -0.3], [0.1, 0.7]]).requires_grad_(True)
    tri = torch.tensor([[0, 1, 2]], dtype=torch.int32)
    rast, _ = R.rasterize(pos.detach(), tri, (16, 16))
    color = torch.rand(1, 16, 16, 3, dtype=torch.float64, requires_grad=True)
    R.antialias(color, rast, pos, tri).sum().backward()
    g_pos, g_col = pos.grad.clone(), color.grad.clone()
    pos.grad, color.grad = None, None
    topo = R.antialias_construct_topology_hash(tri)
    R.antialias(color, rast, pos, tri, topology_hash=topo, pos_gradient_boost=3.0).sum().backward()
    torch.testing.assert_close(pos.grad, 3 * g_pos)
    torch.testing.assert_close(color.grad, g_col)


def test_range_mode_matches_instanced():
    pos = _clip2d([[-0.7, -0.6], [0.8, -0.3], [0.1, 0.7]]).float()
    tri = torch.tensor([[0, 1, 2]], dtype=torch.int32)
    rast, _ = R.rasterize(pos, tri, (16, 16))
    color = torch.rand(1, 16, 16, 3)
    a = R.antialias(color, rast, pos, tri)
    b = R.antialias(color, rast, pos[0].contiguous(), tri)
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, color)
