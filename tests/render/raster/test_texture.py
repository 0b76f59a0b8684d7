import math

import numpy as np
import pytest
import torch

import render.raster as R
from tests.render.raster.reference import (
    np_bilinear,
    np_cube_face,
    np_cube_texel_direction,
    np_downsample,
    np_nearest,
)

BOUNDARIES = ["wrap", "clamp", "zero"]


def _np_levels(tex: np.ndarray, count: int) -> list[np.ndarray]:
    levels = [tex]
    for _ in range(count):
        levels.append(np_downsample(levels[-1]))
    return levels


@pytest.mark.parametrize("shape", [(16, 16), (32, 8), (8, 1), (1, 4)])
def test_mip_chain_is_a_2x2_box_filter(shape):
    tex = torch.rand(1, *shape, 3, dtype=torch.float64)
    mip = R.texture_construct_mip(tex)
    expected = _np_levels(tex[0].numpy(), len(mip.levels))
    assert mip.levels[-1].shape[1:3] == (1, 1)
    for got, want in zip(mip.levels, expected[1:], strict=True):
        np.testing.assert_allclose(got[0].numpy(), want, atol=1e-12)


def test_odd_mip_sizes_need_max_mip_level():
    tex = torch.rand(1, 160, 32, 3)  # a 5x1 level appears after 5 halvings
    with pytest.raises(ValueError, match="max_mip_level=5"):
        R.texture(tex, torch.rand(1, 2, 2, 2), mip_level_bias=torch.zeros(1, 2, 2))
    out = R.texture(tex, torch.rand(1, 2, 2, 2), mip_level_bias=torch.full((1, 2, 2), 9.0), max_mip_level=5)
    expected = _np_levels(tex[0].double().numpy(), 5)[5]  # 5x1: the coarsest level used
    assert out.shape == (1, 2, 2, 3)
    assert np.all(out.numpy() >= expected.min(0).min(0) - 1e-6)


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_bilinear_and_nearest_match_numpy(boundary):
    torch.manual_seed(1)
    tex = torch.rand(1, 5, 7, 2, dtype=torch.float64)
    uv = torch.rand(1, 9, 11, 2, dtype=torch.float64) * 1.6 - 0.3  # includes coordinates outside [0, 1]
    for mode, ref in (("linear", np_bilinear), ("nearest", np_nearest)):
        out = R.texture(tex, uv, filter_mode=mode, boundary_mode=boundary, backend="torch")[0].numpy()
        t, coords = tex[0].numpy(), uv[0].numpy()
        expected = np.array([[ref(t, u, v, boundary) for u, v in row] for row in coords])
        np.testing.assert_allclose(out, expected, atol=1e-12, err_msg=mode)


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_mipmap_filters_match_numpy_trilinear(boundary):
    torch.manual_seed(2)
    tex = torch.rand(1, 16, 8, 3, dtype=torch.float64)
    uv = torch.rand(1, 6, 5, 2, dtype=torch.float64)
    bias = torch.rand(1, 6, 5, dtype=torch.float64) * 5.0 - 0.5  # beyond both ends of the chain
    levels = _np_levels(tex[0].numpy(), 4)
    max_level = len(levels) - 1
    lin = R.texture(tex, uv, mip_level_bias=bias, filter_mode="linear-mipmap-linear", boundary_mode=boundary)
    near = R.texture(
        tex, uv, mip_level_bias=bias, filter_mode="linear-mipmap-nearest", boundary_mode=boundary
    )
    for i in range(6):
        for j in range(5):
            u, v = uv[0, i, j].tolist()
            lod = min(max(float(bias[0, i, j]), 0.0), max_level)
            lo, hi = math.floor(lod), min(math.floor(lod) + 1, max_level)
            a, b = np_bilinear(levels[lo], u, v, boundary), np_bilinear(levels[hi], u, v, boundary)
            np.testing.assert_allclose(lin[0, i, j].numpy(), a + (lod - lo) * (b - a), atol=1e-12)
            nearest_level = min(math.floor(lod + 0.5), max_level)
            np.testing.assert_allclose(
                near[0, i, j].numpy(), np_bilinear(levels[nearest_level], u, v, boundary)
            )


def test_level_of_detail_follows_the_footprint_major_axis():
    torch.manual_seed(3)
    tex = torch.rand(1, 64, 32, 3, dtype=torch.float64)
    uv = torch.rand(1, 4, 4, 2, dtype=torch.float64)
    # A rotated, anisotropic footprint: singular values 6 and 2 texels -> lod = log2(6).
    angle = 0.6
    rot = torch.tensor(
        [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]], dtype=torch.float64
    )
    jac = rot @ torch.diag(torch.tensor([6.0, 2.0], dtype=torch.float64))  # texel units, rows (s, t)
    uv_da = torch.tensor(
        [jac[0, 0] / 32, jac[0, 1] / 32, jac[1, 0] / 64, jac[1, 1] / 64], dtype=torch.float64
    )
    out = R.texture(tex, uv, uv_da.expand(1, 4, 4, 4).contiguous(), filter_mode="linear-mipmap-linear")
    bias = torch.full((1, 4, 4), math.log2(6.0), dtype=torch.float64)
    expected = R.texture(tex, uv, mip_level_bias=bias, filter_mode="linear-mipmap-linear")
    torch.testing.assert_close(out, expected)
    # Bias adds to the footprint level.
    out_b = R.texture(tex, uv, uv_da.expand(1, 4, 4, 4).contiguous(), torch.full_like(bias, -1.0))
    expected_b = R.texture(
        tex, uv, mip_level_bias=bias * 0 + math.log2(3.0), filter_mode="linear-mipmap-linear"
    )
    torch.testing.assert_close(out_b, expected_b)


def test_prebuilt_and_custom_mip_stacks():
    tex = torch.rand(1, 8, 8, 2, dtype=torch.float64, requires_grad=True)
    uv = torch.rand(1, 5, 5, 2, dtype=torch.float64)
    bias = torch.full((1, 5, 5), 1.5, dtype=torch.float64)
    internal = R.texture(tex, uv, mip_level_bias=bias)
    prebuilt = R.texture(tex, uv, mip_level_bias=bias, mip=R.texture_construct_mip(tex))
    torch.testing.assert_close(internal, prebuilt)
    custom = [lvl.clone().requires_grad_(True) for lvl in R.texture_construct_mip(tex).levels]
    R.texture(tex, uv, mip_level_bias=bias, mip=custom).sum().backward()
    assert custom[0].grad.abs().sum() > 0 and custom[1].grad.abs().sum() > 0
    assert tex.grad.abs().sum() == 0  # lod 1.5 only touches levels 1 and 2; nothing flows from them to tex


def test_texture_batch_broadcast():
    tex = torch.rand(1, 4, 4, 3)
    uv = torch.rand(3, 2, 2, 2)
    out = R.texture(tex, uv)
    for b in range(3):
        torch.testing.assert_close(out[b : b + 1], R.texture(tex, uv[b : b + 1]))


# ----------------------------------------------------------------------------------------------
# Cube maps
# ----------------------------------------------------------------------------------------------


def _random_directions(count, seed):
    rng = np.random.default_rng(seed)
    d = rng.normal(size=(count, 3))
    return d / np.linalg.norm(d, axis=1, keepdims=True)


def test_cube_face_selection_and_interior_bilinear():
    size = 8
    cube = torch.rand(1, 6, size, size, 3, dtype=torch.float64)
    dirs = _random_directions(400, 0) * np.random.default_rng(1).uniform(0.5, 3, (400, 1))  # any length
    out = R.texture(cube, torch.from_numpy(dirs).reshape(1, 20, 20, 3), boundary_mode="cube")[0].reshape(
        -1, 3
    )
    checked = 0
    for k, d in enumerate(dirs):
        face, s, t = np_cube_face(d)
        x, y = s * size - 0.5, t * size - 0.5
        if not (0 <= x <= size - 1 and 0 <= y <= size - 1):
            continue  # taps cross a face edge: covered by the seam tests
        expected = np_bilinear(cube[0, face].numpy(), s, t, "clamp")
        np.testing.assert_allclose(out[k].numpy(), expected, atol=1e-12)
        checked += 1
    assert checked > 200


def _smooth_cube(size, fn):
    values = np.zeros((1, 6, size, size, 1))
    for face in range(6):
        for i in range(size):
            for j in range(size):
                d = np_cube_texel_direction(face, i, j, size)
                values[0, face, i, j, 0] = fn(d / np.linalg.norm(d))
    return torch.from_numpy(values)


def test_cube_seams_are_continuous():
    size = 6
    cube = _smooth_cube(size, lambda d: 0.5 + d @ np.array([0.3, -0.5, 0.7]))
    rng = np.random.default_rng(2)
    # Pairs of directions straddling each cube edge, 1e-7 apart.
    a = np.concatenate([np.eye(3), -np.eye(3)])
    base, other = [], []
    for i in range(6):
        for j in range(6):
            if abs(a[i] @ a[j]) > 0:
                continue
            edge_dir = a[i] + a[j] + rng.uniform(-0.6, 0.6) * np.cross(a[i], a[j])
            base.append(edge_dir + 1e-7 * a[i])
            other.append(edge_dir + 1e-7 * a[j])
    pairs = torch.from_numpy(np.array(base + other)).reshape(1, 2, -1, 3)
    out = R.texture(cube, pairs, boundary_mode="cube")[0, ..., 0]
    np.testing.assert_allclose(out[0].numpy(), out[1].numpy(), atol=1e-5)


def test_cube_corner_tap_is_the_mean_of_the_three_real_texels():
    size = 4
    cube = torch.rand(1, 6, size, size, 1, dtype=torch.float64)
    d = torch.tensor([1.0, 1.0, 1.0], dtype=torch.float64) + torch.tensor([1e-9, 0, 0], dtype=torch.float64)
    out = R.texture(cube, d.reshape(1, 1, 1, 3), boundary_mode="cube").item()
    # At the exact corner all four taps have weight 1/4: the corner texels of +X, +Y, +Z and their mean.
    corner_px = cube[0, 0, 0, 0, 0]  # +X face: s = (-z + 1)/2 -> column 0, t = (-y + 1)/2 -> row 0
    corner_py = cube[0, 2, size - 1, size - 1, 0]  # +Y: s = (x+1)/2 -> last column, t = (z+1)/2 -> last row
    corner_pz = cube[0, 4, 0, size - 1, 0]  # +Z: s = (x+1)/2 -> last column, t = (-y+1)/2 -> row 0
    mean = (corner_px + corner_py + corner_pz) / 3
    assert out == pytest.approx(float((corner_px + corner_py + corner_pz + mean) / 4), abs=1e-6)


def test_cube_zero_direction_gives_zero_and_no_gradient():
    cube = torch.rand(1, 6, 4, 4, 2, requires_grad=True)
    d = torch.zeros(1, 1, 2, 3, requires_grad=True)
    with torch.no_grad():
        d[0, 0, 1] = torch.tensor([0.2, 0.9, -0.1])
    out = R.texture(cube, d, boundary_mode="cube")
    assert torch.all(out[0, 0, 0] == 0) and torch.any(out[0, 0, 1] != 0)
    out[0, 0, 0].sum().backward()
    assert cube.grad.abs().sum() == 0 and d.grad.abs().sum() == 0


# ----------------------------------------------------------------------------------------------
# Gradients
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_gradcheck_linear(boundary):
    torch.manual_seed(4)
    tex = torch.rand(1, 4, 5, 2, dtype=torch.float64, requires_grad=True)
    uv = (torch.rand(1, 3, 3, 2, dtype=torch.float64) * 1.4 - 0.2).requires_grad_(True)
    fn = lambda t, c: R.texture(t, c, filter_mode="linear", boundary_mode=boundary)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (tex, uv), eps=1e-6, atol=1e-6)


def test_gradcheck_trilinear_with_uv_da_and_bias():
    torch.manual_seed(5)
    tex = torch.rand(1, 8, 8, 2, dtype=torch.float64, requires_grad=True)
    uv = torch.rand(1, 3, 3, 2, dtype=torch.float64, requires_grad=True)
    uv_da = ((torch.rand(1, 3, 3, 4, dtype=torch.float64) + 0.2) * 0.2).requires_grad_(True)
    bias = (torch.rand(1, 3, 3, dtype=torch.float64) * 0.8 - 0.4).requires_grad_(True)
    fn = lambda t, c, da, b: R.texture(t, c, da, b, filter_mode="linear-mipmap-linear")  # noqa: E731
    assert torch.autograd.gradcheck(fn, (tex, uv, uv_da, bias), eps=1e-6, atol=1e-6)


def test_gradcheck_cube_map_with_mips():
    torch.manual_seed(6)
    cube = torch.rand(1, 6, 4, 4, 2, dtype=torch.float64, requires_grad=True)
    d = torch.from_numpy(_random_directions(6, 3)).reshape(1, 2, 3, 3).requires_grad_(True)
    d_da = (torch.rand(1, 2, 3, 6, dtype=torch.float64) * 0.3).requires_grad_(True)
    fn = lambda t, c, da: R.texture(t, c, da, boundary_mode="cube")  # noqa: E731
    assert torch.autograd.gradcheck(fn, (cube, d, d_da), eps=1e-6, atol=1e-6)


def test_nearest_has_no_uv_gradient():
    tex = torch.rand(1, 4, 4, 1, requires_grad=True)
    uv = torch.rand(1, 2, 2, 2, requires_grad=True)
    R.texture(tex, uv, filter_mode="nearest").sum().backward()
    assert tex.grad.sum() == 4
    assert uv.grad is None or uv.grad.abs().sum() == 0
