import math

import numpy as np
import pytest
import torch
from skimage import measure

from geometry.marching_cubes import marching_cubes
from geometry.mc_tables import triangle_table


def _grid(n, lo=-1.0, hi=1.0, dtype=torch.float64):
    lin = torch.linspace(lo, hi, n, dtype=dtype)
    return torch.stack(torch.meshgrid(lin, lin, lin, indexing="ij"), -1)


def sphere(p, r=0.7):
    return p.norm(dim=-1) - r


def torus(p, big=0.55, small=0.25):
    q = torch.stack((torch.sqrt(p[..., 0] ** 2 + p[..., 1] ** 2) - big, p[..., 2]), -1)
    return q.norm(dim=-1) - small


def box(p, half=0.6):
    q = p.abs() - half
    return q.clamp(min=0).norm(dim=-1) + q.max(-1).values.clamp(max=0)


def _area_volume(v, f):
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    area = torch.linalg.cross(b - a, c - a).norm(dim=-1).sum() / 2
    volume = (a * torch.linalg.cross(b, c)).sum() / 6
    return area.item(), volume.item()


def _edges(f):
    e = torch.cat((f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]))
    return e


def _check_closed_manifold(v, f):
    e = _edges(f)
    undirected, counts = torch.unique(e.sort(1).values, dim=0, return_counts=True)
    assert (counts == 2).all()  # watertight: every edge shared by exactly two faces
    assert torch.unique(e, dim=0).shape[0] == e.shape[0]  # consistently oriented
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    assert (torch.linalg.cross(b - a, c - a).norm(dim=-1) > 0).all()  # no degenerate faces
    return v.shape[0] - undirected.shape[0] + f.shape[0]  # Euler characteristic


@pytest.mark.parametrize(
    "shape, area, volume, euler",
    [
        (sphere, 4 * math.pi * 0.7**2, 4 / 3 * math.pi * 0.7**3, 2),
        (torus, 4 * math.pi**2 * 0.55 * 0.25, 2 * math.pi**2 * 0.55 * 0.25**2, 0),
        (box, 6 * 1.2**2, 1.2**3, 2),
    ],
)
def test_analytic_shapes_at_128(shape, area, volume, euler):
    v, f = marching_cubes(shape(_grid(128)))
    got_area, got_volume = _area_volume(v, f)
    assert got_area == pytest.approx(area, rel=0.01)
    assert got_volume == pytest.approx(volume, rel=0.01)  # positive: faces are counter-clockwise outward
    assert _check_closed_manifold(v, f) == euler


@pytest.mark.parametrize("shape", [sphere, torus, box])
def test_agrees_with_skimage(shape):
    n = 40
    sdf = shape(_grid(n))
    v, f = marching_cubes(sdf)
    spacing = 2 / (n - 1)
    sk_v, sk_f, _, _ = measure.marching_cubes(sdf.numpy(), level=0.0, spacing=(spacing,) * 3)
    sk_v = torch.from_numpy(sk_v.copy()) - 1.0
    dist = torch.cdist(v, sk_v)
    hausdorff = max(dist.min(1).values.max().item(), dist.min(0).values.max().item())
    assert hausdorff < 0.05 * spacing
    sk_f = torch.from_numpy(sk_f.astype(np.int64))
    sk_edges = torch.unique(_edges(sk_f).sort(1).values, dim=0).shape[0]
    sk_euler = sk_v.shape[0] - sk_edges + sk_f.shape[0]
    assert _check_closed_manifold(v, f) == sk_euler


def test_every_case_is_a_closed_oriented_surface_when_embedded():
    # Each of the 254 non-trivial cases, padded by an outside layer, must give a closed surface.
    table = triangle_table()
    assert table.shape == (256, 5, 3)
    for case in range(1, 255):
        sdf = torch.ones(4, 4, 4, dtype=torch.float64)
        for c in range(8):
            if (case >> c) & 1:
                sdf[1 + (c & 1), 1 + ((c >> 1) & 1), 1 + ((c >> 2) & 1)] = -1.0
        v, f = marching_cubes(sdf)
        _check_closed_manifold(v, f)
        assert _area_volume(v, f)[1] > 0


def test_empty_and_full_grids_give_empty_meshes():
    for value in (1.0, -1.0):
        v, f = marching_cubes(torch.full((5, 6, 7), value))
        assert v.shape == (0, 3) and f.shape == (0, 3)
    with pytest.raises(ValueError, match="sdf: expected a"):
        marching_cubes(torch.zeros(4, 4))


def test_world_box_and_vertex_formula():
    sdf = torch.tensor([-1.0, 3.0]).reshape(2, 1, 1).expand(2, 2, 2).contiguous()
    v, f = marching_cubes(sdf, lower=(0.0, 0.0, 0.0), upper=(4.0, 1.0, 1.0))
    assert torch.allclose(v[:, 0], torch.full((v.shape[0],), 1.0))  # 0 + 4 * 1 / (1 + 3)


def test_gradient_matches_finite_differences():
    torch.manual_seed(0)
    sdf = (sphere(_grid(9)) + 0.01 * torch.randn(9, 9, 9, dtype=torch.float64)).requires_grad_()
    weights = torch.randn(2000, 3, dtype=torch.float64)

    def loss(values):
        v, _ = marching_cubes(values)
        return (v * weights[: v.shape[0]]).sum() + (v**2).sum()

    loss(sdf).backward()
    # Finite differences at the grid values next to the surface (topology does not change for small eps).
    near = torch.nonzero(sdf.detach().abs() < 0.2)[:25]
    eps = 1e-6
    for i, j, k in near.tolist():
        plus, minus = sdf.detach().clone(), sdf.detach().clone()
        plus[i, j, k] += eps
        minus[i, j, k] -= eps
        numeric = (loss(plus) - loss(minus)) / (2 * eps)
        assert sdf.grad[i, j, k].item() == pytest.approx(numeric.item(), rel=1e-5, abs=1e-7)
