"""MikkTSpace tangents against an analytic frame, and the normal-map perturbation round trip (Blender's
own MikkTSpace is compared in tests/recon/test_blender.py)."""

import math

import torch

from geometry.mesh import vertex_normals
from geometry.tangents import corner_tangents, perturb_normals, to_tangent_space


def _grid(n: int = 6, mirrored: bool = False):
    """A bumpy height field z = f(x, y) over [0, 1]^2 with uv = (x, y) (or (1 - x, y))."""
    axis = torch.linspace(0, 1, n, dtype=torch.float64)
    y, x = torch.meshgrid(axis, axis, indexing="ij")
    z = 0.1 * torch.sin(3 * x) * torch.cos(2 * y)
    vertices = torch.stack((x, y, z), -1).reshape(-1, 3)
    uv = torch.stack((1 - x if mirrored else x, y), -1).reshape(-1, 2)
    index = torch.arange(n * n).reshape(n, n)
    a, b, c, d = index[:-1, :-1], index[:-1, 1:], index[1:, :-1], index[1:, 1:]
    faces = torch.cat((torch.stack((a, b, d), -1).reshape(-1, 3), torch.stack((a, d, c), -1).reshape(-1, 3)))
    return vertices, faces, uv


def test_tangents_follow_dp_du_and_the_uv_orientation():
    for mirrored in (False, True):
        vertices, faces, uv = _grid(mirrored=mirrored)
        normals = vertex_normals(vertices, faces)
        tangents = corner_tangents(vertices, normals, faces, uv, faces)
        xyz, sign = tangents[..., :3], tangents[..., 3]
        # dP/du is +x (or -x when u = 1 - x), tilted by the height field; orthogonal to the normal.
        along = xyz[..., 0] * (-1 if mirrored else 1)
        assert bool((along > 0.9).all())
        assert torch.allclose(xyz.norm(dim=-1), torch.ones_like(along))
        assert float((xyz * normals[faces]).sum(-1).abs().max()) < 1e-9
        assert bool((sign == (-1 if mirrored else 1)).all())
        # Bitangent = sign * N x T points along +v = +y in both cases.
        bitangent = sign[..., None] * torch.linalg.cross(normals[faces], xyz)
        assert bool((bitangent[..., 1] > 0.9).all())
        # One tangent per UV vertex: corners of the same vertex agree.
        flat = tangents.reshape(-1, 4)
        for vertex in (7, 14, 21):
            same = flat[faces.reshape(-1) == vertex]
            assert torch.allclose(same, same[:1].expand_as(same))


def test_perturbation_round_trip_and_flat_identity():
    torch.manual_seed(0)
    n = torch.nn.functional.normalize(torch.randn(50, 3, dtype=torch.float64), dim=-1)
    t = torch.nn.functional.normalize(torch.linalg.cross(n, torch.randn(50, 3, dtype=torch.float64)), dim=-1)
    tangents = torch.cat((t, torch.where(torch.rand(50, 1) > 0.5, 1.0, -1.0).double()), -1)
    flat = torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64).expand(50, 3)
    assert torch.allclose(perturb_normals(flat, n, tangents), n)
    tilt = math.radians(30)
    local = torch.tensor([[math.sin(tilt), 0.0, math.cos(tilt)]], dtype=torch.float64).expand(50, 3)
    world = perturb_normals(local, n, tangents)
    assert torch.allclose((world * t).sum(-1), torch.full((50,), math.sin(tilt), dtype=torch.float64))
    assert torch.allclose(to_tangent_space(world, n, tangents), local)


def test_perturbation_gradcheck():
    n = torch.nn.functional.normalize(
        torch.tensor([[0.2, 0.1, 1.0], [1.0, 0.3, -0.2]], dtype=torch.float64), dim=-1
    )
    t = torch.nn.functional.normalize(
        torch.linalg.cross(n, torch.tensor([[1.0, 0.0, 0.0]] * 2).double()), dim=-1
    )
    tangents = torch.cat((t, torch.tensor([[1.0], [-1.0]], dtype=torch.float64)), -1)
    value = torch.tensor([[0.1, -0.2, 0.9], [0.3, 0.2, 0.8]], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v: perturb_normals(v, n, tangents), (value,))
