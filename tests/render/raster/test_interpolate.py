import numpy as np
import pytest
import torch

import render.raster as R
from tests.render.raster.reference import random_scene


def _setup(seed=0, height=24, width=30, count=20, size=1.0):
    scene = random_scene(count, seed, size=size)
    tri = torch.from_numpy(scene.tri).int()
    rast, rast_db = R.rasterize(scene.clip[None].float().contiguous(), tri, (height, width), backend="torch")
    return scene, tri, rast, rast_db


def test_interpolated_world_position_is_the_ray_hit_point():
    scene, tri, rast, rast_db = _setup()
    attr = torch.from_numpy(scene.vertices).float()[None]
    out, _ = R.interpolate(attr, rast, tri, backend="torch")
    ids, _, _, _, hit, margin = scene.ray_cast(24, 30)
    ok = (ids > 0) & (rast[0, ..., 3].numpy() == ids) & (margin > 1e-5)
    assert ok.sum() > 100
    np.testing.assert_allclose(out[0].numpy()[ok], hit[ok], atol=1e-3)
    assert torch.all(out[0][rast[0, ..., 3] == 0] == 0)


def test_attribute_derivatives_match_finite_differences_of_hit_points():
    scene, tri, rast, rast_db = _setup(seed=4, height=28, width=28)
    attr = torch.from_numpy(scene.vertices).float()[None]
    _, out_da = R.interpolate(attr, rast, tri, rast_db, diff_attrs=[0, 2], backend="torch")
    assert out_da.shape == (1, 28, 28, 4)
    h = 1e-3
    xp, xm = scene.ray_cast(28, 28, (h, 0)), scene.ray_cast(28, 28, (-h, 0))
    yp, ym = scene.ray_cast(28, 28, (0, h)), scene.ray_cast(28, 28, (0, -h))
    ids = rast[0, ..., 3].numpy()
    same = (ids > 0) & np.all([r[0] == ids for r in (xp, xm, yp, ym)], axis=0)
    dx = (xp[4] - xm[4]) / (2 * h)
    dy = (yp[4] - ym[4]) / (2 * h)
    # layout: (dA0/dX, dA0/dY, dA2/dX, dA2/dY)
    expected = np.stack((dx[..., 0], dy[..., 0], dx[..., 2], dy[..., 2]), -1)
    np.testing.assert_allclose(out_da[0].numpy()[same], expected[same], rtol=5e-3, atol=5e-4)


def test_diff_attrs_all_and_empty_output():
    _, tri, rast, rast_db = _setup()
    attr = torch.rand(1, 60, 3)
    out, da = R.interpolate(attr, rast, tri, backend="torch")
    assert da.shape == (1, 24, 30, 0)
    _, da_all = R.interpolate(attr, rast, tri, rast_db, diff_attrs="all", backend="torch")
    _, da_sel = R.interpolate(attr, rast, tri, rast_db, diff_attrs=[0, 1, 2], backend="torch")
    torch.testing.assert_close(da_all, da_sel)


def test_broadcast_and_range_mode():
    scene, tri, rast, _ = _setup()
    attr = torch.rand(60, 5)
    shared, _ = R.interpolate(attr[None], rast, tri, backend="torch")
    ranged, _ = R.interpolate(attr, rast, tri, backend="torch")
    torch.testing.assert_close(shared, ranged)
    # Per-image attributes in a batch of two identical rasterizations.
    rast2 = torch.cat((rast, rast))
    attr2 = torch.stack((attr, 2 * attr))
    out2, _ = R.interpolate(attr2, rast2, tri, backend="torch")
    torch.testing.assert_close(out2[1], 2 * out2[0])


@pytest.mark.parametrize("with_db", [False, True])
def test_gradcheck(with_db):
    pos = torch.tensor(
        [[-0.9, -0.8, 0.1, 1.0], [0.9, -0.7, 0.3, 1.3], [0.1, 0.9, -0.2, 0.9], [0.95, 0.9, 0.5, 1.1],
         [-0.95, 0.95, 0.0, 1.0], [0.0, -0.3, -0.5, 1.2], [0.8, 0.1, -0.6, 1.0], [-0.2, 0.4, -0.4, 1.4],
         [0.0, 0.0, 0.9, 1.0]],
        dtype=torch.float32,
    )[None]  # fmt: skip
    tri = torch.tensor([[0, 1, 2], [1, 3, 2], [0, 2, 4], [5, 6, 7]], dtype=torch.int32)
    rast, rast_db = R.rasterize(pos, tri, (6, 7), backend="torch")
    covered = rast[..., 3] > 0
    assert covered.sum() > 20 and len(rast[..., 3].unique()) >= 3
    attr = torch.rand(1, 9, 2, dtype=torch.float64, requires_grad=True)
    uv = rast[..., :2].double().requires_grad_(True)
    db = rast_db.double().requires_grad_(True)
    ident = rast[..., 2:].double()

    def run(attr_, uv_, db_):
        r = torch.cat((uv_, ident), -1)
        out, da = R.interpolate(
            attr_, r, tri, db_ if with_db else None, "all" if with_db else None, backend="torch"
        )
        return (out, da) if with_db else out

    assert torch.autograd.gradcheck(run, (attr, uv, db), eps=1e-6, atol=1e-6)
