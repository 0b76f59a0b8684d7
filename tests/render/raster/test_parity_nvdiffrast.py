"""torch backend vs nvdiffrast: the same inputs and random output gradients through both.

Skipped unless CUDA and nvdiffrast are available; run them whenever a GPU is lent and record the
outcome in docs/benchmarks.md. Pixels whose centre lies within a hair of a triangle edge may
legitimately pick a different triangle (fill-rule ties), so rasterization is compared on pixels
where both backends agree on the triangle id, and that agreement itself must be near-total.
"""

import math

import pytest
import torch

import render.raster as R
from geometry.primitives import uv_sphere
from render.camera import look_at, perspective, to_clip

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not R.nvdiffrast_available(), reason="needs CUDA and nvdiffrast"),
]
DEVICE = "cuda"


def _scene(seed=0, batch=2, res=(96, 128)):
    torch.manual_seed(seed)
    vertices, uv, tri = uv_sphere(24, 48)
    vertices = vertices + 0.1 * torch.randn_like(vertices)  # a bumpy closed mesh: folds and silhouettes
    views = [
        look_at((3 * math.cos(a), 3 * math.sin(a), 1.0), (0, 0, 0), (0, 0, 1)) for a in (0.3, 2.0)[:batch]
    ]
    mvp = perspective(math.radians(45), res[1] / res[0]) @ torch.stack(views)
    pos = to_clip(vertices, mvp).contiguous()
    return pos.to(DEVICE), tri.to(DEVICE), uv.to(DEVICE), res


def _both(fn, *inputs):
    """Run fn under both backends on fresh leaf copies; returns [(outputs, input grads)] per backend."""
    results = []
    gen = torch.Generator(device=DEVICE).manual_seed(123)
    upstream = None
    for name in ("torch", "nvdiffrast"):
        leaves = [x.detach().clone().requires_grad_(x.is_floating_point()) for x in inputs]
        with R.use_backend(name):
            outs = fn(*leaves)
        outs = outs if isinstance(outs, tuple) else (outs,)
        if upstream is None:
            upstream = [torch.randn(o.shape, generator=gen, device=DEVICE) for o in outs]
        loss = sum((o * g).sum() for o, g in zip(outs, upstream, strict=True) if o.requires_grad)
        grads = torch.autograd.grad(loss, [x for x in leaves if x.requires_grad], allow_unused=True)
        results.append(([o.detach() for o in outs], grads))
    return results


def test_rasterize_parity():
    pos, tri, _, res = _scene()
    (t_out, t_grad), (n_out, n_grad) = _both(lambda p: R.rasterize(p, tri, res), pos)
    t_rast, n_rast = t_out[0], n_out[0]
    agree = t_rast[..., 3] == n_rast[..., 3]
    assert agree.float().mean() > 0.999
    torch.testing.assert_close(t_rast[agree], n_rast[agree], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(t_out[1][agree], n_out[1][agree], atol=1e-3, rtol=1e-3)
    if agree.all():
        torch.testing.assert_close(t_grad[0], n_grad[0], atol=1e-3, rtol=1e-3)


def test_interpolate_parity():
    pos, tri, uv, res = _scene(1)
    rast, rast_db = R.rasterize(pos, tri, res, backend="nvdiffrast")
    results = _both(lambda a, r, db: R.interpolate(a, r, tri, db, diff_attrs="all"), uv[None], rast, rast_db)
    (t_out, t_grad), (n_out, n_grad) = results
    for a, b in zip(t_out, n_out, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    for a, b in zip(t_grad, n_grad, strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("boundary", ["wrap", "clamp", "zero"])
@pytest.mark.parametrize("mode", ["nearest", "linear", "linear-mipmap-nearest", "linear-mipmap-linear"])
def test_texture_parity(mode, boundary):
    torch.manual_seed(2)
    tex = torch.rand(2, 32, 64, 3, device=DEVICE)
    uv = torch.rand(2, 40, 50, 2, device=DEVICE) * 1.4 - 0.2
    uv_da = torch.randn(2, 40, 50, 4, device=DEVICE) * 0.02
    results = _both(
        lambda t, c, da: R.texture(t, c, da, filter_mode=mode, boundary_mode=boundary), tex, uv, uv_da
    )
    (t_out, t_grad), (n_out, n_grad) = results
    torch.testing.assert_close(t_out[0], n_out[0], atol=2e-4, rtol=1e-3)
    for a, b in zip(t_grad, n_grad, strict=True):
        if a is not None and b is not None:
            torch.testing.assert_close(a, b, atol=2e-3, rtol=2e-3)


def test_cube_texture_parity():
    torch.manual_seed(3)
    cube = torch.rand(1, 6, 16, 16, 3, device=DEVICE)
    d = torch.randn(1, 30, 30, 3, device=DEVICE)
    d_da = torch.randn(1, 30, 30, 6, device=DEVICE) * 0.05
    (t_out, t_grad), (n_out, n_grad) = _both(
        lambda t, c, da: R.texture(t, c, da, boundary_mode="cube"), cube, d, d_da
    )
    torch.testing.assert_close(t_out[0], n_out[0], atol=2e-4, rtol=1e-3)
    torch.testing.assert_close(t_grad[0], n_grad[0], atol=2e-3, rtol=2e-3)


def test_antialias_parity():
    pos, tri, uv, res = _scene(4)
    rast, _ = R.rasterize(pos, tri, res, backend="nvdiffrast")
    color = torch.rand(*rast.shape[:3], 3, device=DEVICE)
    (t_out, t_grad), (n_out, n_grad) = _both(lambda c, p: R.antialias(c, rast, p, tri), color, pos)
    torch.testing.assert_close(t_out[0], n_out[0], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(t_grad[0], n_grad[0], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(t_grad[1], n_grad[1], atol=1e-3, rtol=1e-2)
