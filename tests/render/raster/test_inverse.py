"""Inverse-rendering smoke tests: they only converge if the gradients are right."""

import torch

import render.raster as R


def test_fit_triangle_to_target_silhouette():
    # Only antialias supplies gradients of a constant-colour silhouette w.r.t. vertex positions.
    torch.manual_seed(0)
    tri = torch.tensor([[0, 1, 2]], dtype=torch.int32)
    size = 48

    def clip(xy):
        return torch.cat((xy, torch.zeros_like(xy[:, :1]), torch.ones_like(xy[:, :1])), -1)[None].contiguous()

    def silhouette(xy):
        pos = clip(xy)
        rast, _ = R.rasterize(pos, tri, (size, size), backend="torch")
        return R.antialias((rast[..., 3:] > 0).float(), rast, pos, tri, backend="torch")

    target_xy = torch.tensor([[-0.6, -0.5], [0.7, -0.3], [0.0, 0.65]])
    target = silhouette(target_xy)
    xy = torch.tensor([[-0.35, -0.25], [0.35, -0.45], [0.2, 0.35]], requires_grad=True)  # visibly wrong
    start_error = (xy - target_xy).norm(dim=-1).max().item()
    opt = torch.optim.Adam([xy], lr=0.01)
    for _ in range(300):
        opt.zero_grad()
        loss = (silhouette(xy) - target).pow(2).mean()
        loss.backward()
        opt.step()
    final_error = (xy.detach() - target_xy).norm(dim=-1).max().item()
    assert start_error > 0.25
    assert final_error < 2e-3, final_error  # 1/20 pixel (a pixel is 2/48 NDC)


def test_fit_texture_of_a_quad():
    torch.manual_seed(1)
    pos = torch.tensor([[[-0.9, -0.9, 0, 1], [0.9, -0.9, 0, 1], [0.9, 0.9, 0, 1], [-0.9, 0.9, 0, 1]]])
    tri = torch.tensor([[0, 1, 2], [0, 2, 3]], dtype=torch.int32)
    uv = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]])
    rast, rast_db = R.rasterize(pos, tri, (64, 64), backend="torch")
    texc, texd = R.interpolate(uv, rast, tri, rast_db, diff_attrs="all", backend="torch")
    target_tex = torch.rand(1, 16, 16, 3)

    def render(tex):
        return R.texture(tex, texc, texd, filter_mode="linear-mipmap-linear", boundary_mode="clamp")

    target = render(target_tex)
    tex = torch.zeros(1, 16, 16, 3, requires_grad=True)
    opt = torch.optim.Adam([tex], lr=0.05)
    for _ in range(200):
        opt.zero_grad()
        loss = (render(tex) - target).pow(2).mean()
        loss.backward()
        opt.step()
    assert (render(tex) - target).abs().max() < 2e-3
    assert (tex.detach() - target_tex).abs().mean() < 2e-3
