import math

import numpy as np
import pytest
import torch

import render.raster as R
from geometry.primitives import uv_sphere
from render.camera import look_at, perspective, to_clip
from render.raster.torch_backend import scan_cpu
from tests.render.raster.reference import Scene, random_scene


@pytest.fixture(autouse=True, params=["compiled scan", "torch scan"])
def scan_path(request, monkeypatch):
    """Every test runs with the visibility scan's compiled loops (numba) and with their torch twin."""
    if request.param == "torch scan":
        monkeypatch.setattr(scan_cpu, "available", lambda: False)
    elif not scan_cpu.available():
        pytest.skip("needs numba")


EDGE_MARGIN = 1e-5  # pixels whose reference hit is this close to an edge may legitimately differ


def _rasterize(scene: Scene, height: int, width: int, **kw):
    tri = torch.from_numpy(scene.tri).int()
    rast, rast_db = R.rasterize(
        scene.clip[None].float().contiguous(), tri, (height, width), backend="torch", **kw
    )
    return rast[0].double().numpy(), rast_db[0].double().numpy()


def _compare(scene: Scene, height: int, width: int):
    rast, _ = _rasterize(scene, height, width)
    ids, u, v, depth, _, margin = scene.ray_cast(height, width)
    ambiguous = margin < EDGE_MARGIN
    mismatch = (rast[..., 3] != ids) & ~ambiguous
    assert mismatch.sum() == 0, f"{mismatch.sum()} pixels differ from the ray-cast reference"
    ok = (ids > 0) & (rast[..., 3] == ids)
    np.testing.assert_allclose(rast[..., 0][ok], u[ok], atol=2e-4)
    np.testing.assert_allclose(rast[..., 1][ok], v[ok], atol=2e-4)
    np.testing.assert_allclose(rast[..., 2][ok], depth[ok], atol=2e-5)
    assert np.all(rast[ids == 0] == 0), "empty pixels must be all zeros"
    return ids


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_overlapping_triangles_match_ray_casting(seed):
    ids = _compare(random_scene(16, seed), 32, 40)
    assert len(np.unique(ids)) > 8  # the scene really has many visible, overlapping triangles


def test_triangles_crossing_the_camera_plane():
    # Triangles that pass beside and behind the eye (z = 4): vertices with w <= 0 and near-plane cuts.
    rng = np.random.default_rng(7)
    tris = []
    for _ in range(10):
        front = rng.uniform([-1, -1, -1], [1, 1, 2.5])
        behind = rng.uniform([-2, -2, 4.5], [2, 2, 7])
        side = rng.uniform([-1.5, -1.5, 0], [1.5, 1.5, 6])
        tris += [front, behind, side]
    scene = Scene(np.array(tris), np.arange(30).reshape(10, 3), near=0.5)
    assert (scene.clip[:, 3] <= 0).any()  # really behind the camera
    ids = _compare(scene, 36, 36)
    assert (ids > 0).mean() > 0.2


def test_triangle_entirely_behind_camera_is_invisible():
    scene = Scene(np.array([[-1.0, -1, 6], [1, -1, 6], [0, 1, 6]]), np.array([[0, 1, 2]]))
    rast, _ = _rasterize(scene, 16, 16)
    assert np.all(rast == 0)


def test_screen_filling_triangles_use_the_tiled_path():
    scene = Scene(np.array([[-30.0, -30, 0], [30, -30, 0], [0, 40, 0], [-1, -1, 1], [1, -1, 1], [0, 1, 1]]),
                  np.array([[0, 1, 2], [3, 4, 5]]))  # fmt: skip
    ids = _compare(scene, 80, 96)
    assert (ids == 1).mean() > 0.5 and (ids == 2).any()


def test_depth_clipping_against_near_and_far_planes():
    # A long triangle reaching from in front of the near plane to beyond the far plane.
    scene = Scene(np.array([[-1.0, -0.5, 3.95], [1.0, -0.5, 3.95], [0.0, 0.5, -30.0]]), np.array([[0, 1, 2]]),
                  near=0.1, far=10.0)  # fmt: skip
    rast, _ = _rasterize(scene, 48, 48)
    _compare(scene, 48, 48)
    covered = rast[..., 3] > 0
    assert covered.any() and np.all(np.abs(rast[..., 2][covered]) <= 1)


def test_closed_mesh_is_watertight():
    vertices, _, tri = uv_sphere(48, 96)
    mvp = perspective(math.radians(40)) @ look_at((0.3, 0.2, 3.5), (0, 0, 0), (0, 1, 0))
    pos = to_clip(vertices, mvp)[None].contiguous()
    rast, _ = R.rasterize(pos, tri, (160, 160), backend="torch")
    covered = rast[0, ..., 3] > 0
    inner = covered[:-2, 1:-1] & covered[2:, 1:-1] & covered[1:-1, :-2] & covered[1:-1, 2:]
    assert (inner & ~covered[1:-1, 1:-1]).sum() == 0, "holes between shared edges"


def test_rast_db_matches_finite_differences():
    scene = random_scene(6, 3)
    height = width = 28
    rast, rast_db = _rasterize(scene, height, width)
    h = 1e-3
    refs = {}
    for name, off in (("x+", (h, 0)), ("x-", (-h, 0)), ("y+", (0, h)), ("y-", (0, -h))):
        refs[name] = scene.ray_cast(height, width, off)
    ids = rast[..., 3]
    same = (ids > 0) & np.all([refs[k][0] == ids for k in refs], axis=0)
    assert same.sum() > 50
    du_dx = (refs["x+"][1] - refs["x-"][1]) / (2 * h)
    du_dy = (refs["y+"][1] - refs["y-"][1]) / (2 * h)
    dv_dx = (refs["x+"][2] - refs["x-"][2]) / (2 * h)
    dv_dy = (refs["y+"][2] - refs["y-"][2]) / (2 * h)
    expected = np.stack((du_dx, du_dy, dv_dx, dv_dy), -1)
    np.testing.assert_allclose(rast_db[same], expected[same], rtol=2e-3, atol=2e-4)
    assert np.all(rast_db[ids == 0] == 0)


def test_instanced_and_range_modes_agree():
    s0, s1 = random_scene(5, 11), random_scene(5, 12)
    pos = torch.stack((s0.clip, s1.clip)).float().contiguous()
    tri = torch.from_numpy(s0.tri).int()
    inst, inst_db = R.rasterize(pos, tri, (20, 24), backend="torch")
    # Range mode: both meshes in one vertex buffer, one range per image.
    pos_r = torch.cat((s0.clip, s1.clip)).float().contiguous()
    tri_r = torch.cat((tri, tri + 15))
    ranges = torch.tensor([[0, 5], [5, 5]], dtype=torch.int32)
    rng_out, rng_db = R.rasterize(pos_r, tri_r, (20, 24), ranges=ranges, backend="torch")
    # Range mode reports global triangle ids.
    ids = rng_out[..., 3].clone()
    ids[1][ids[1] > 0] -= 5
    torch.testing.assert_close(ids, inst[..., 3])
    torch.testing.assert_close(rng_out[..., :3], inst[..., :3])
    torch.testing.assert_close(rng_db, inst_db)


def test_gradcheck_barycentrics_and_derivatives():
    torch.manual_seed(0)
    pos = torch.tensor(
        [[-0.7, -0.6, 0.1, 1.0], [0.8, -0.5, 0.3, 1.3], [0.1, 0.9, -0.2, 0.9], [0.9, 0.8, 0.5, 1.1]],
        dtype=torch.float64,
    )[None].requires_grad_(True)
    tri = torch.tensor([[0, 1, 2], [1, 3, 2]], dtype=torch.int32)

    def uv_and_db(p):
        rast, rast_db = R.rasterize(p, tri, (6, 7), backend="torch")
        return rast[..., :2], rast_db

    assert torch.autograd.gradcheck(uv_and_db, (pos,), eps=1e-6, atol=1e-6)


def test_depth_and_ids_carry_no_gradient_and_grad_db_false_blocks_db():
    scene = random_scene(4, 5)
    pos = scene.clip[None].float().contiguous().requires_grad_(True)
    tri = torch.from_numpy(scene.tri).int()
    rast, rast_db = R.rasterize(pos, tri, (16, 16), grad_db=False, backend="torch")
    (rast[..., 2:].sum() + rast_db.sum()).backward()
    assert pos.grad is None or torch.count_nonzero(pos.grad) == 0
    rast, rast_db = R.rasterize(pos, tri, (16, 16), grad_db=True, backend="torch")
    rast_db.sum().backward()
    assert torch.count_nonzero(pos.grad) > 0
    assert torch.all(pos.grad[..., 2] == 0)  # nothing reaches z


def test_non_finite_vertices_are_skipped():
    pos = torch.tensor([[[-0.5, -0.5, 0, 1], [0.5, -0.5, 0, 1], [0, 0.5, 0, 1], [float("nan"), 0, 0, 1]]])
    tri = torch.tensor([[0, 1, 2], [0, 1, 3]], dtype=torch.int32)
    rast, _ = R.rasterize(pos, tri, (8, 8), backend="torch")
    assert set(rast[..., 3].unique().tolist()) == {0.0, 1.0}
