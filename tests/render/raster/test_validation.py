"""Bad input gives a ValueError that names the offending argument."""

import pytest
import torch

import render.raster as R

POS = torch.tensor([[[-0.5, -0.5, 0, 1], [0.5, -0.5, 0, 1], [0, 0.5, 0, 1]]])
TRI = torch.tensor([[0, 1, 2]], dtype=torch.int32)


def _rast():
    return R.rasterize(POS, TRI, (8, 8))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"pos": POS.double().half()}, "pos"),
        ({"pos": POS[..., :3].contiguous()}, "pos"),
        ({"pos": POS[0, 0]}, "pos"),
        ({"pos": torch.cat((POS, POS), -1)[..., ::2]}, "pos"),  # non-contiguous
        ({"pos": torch.empty(1, 0, 4)}, "pos"),
        ({"tri": TRI.long()}, "tri"),
        ({"tri": TRI + 5}, "tri"),
        ({"tri": TRI - 1}, "tri"),
        ({"tri": torch.zeros(0, 3, dtype=torch.int32)}, "tri"),
        ({"tri": TRI[:, :2].contiguous()}, "tri"),
        ({"tri": torch.tensor([[0, 1, 2], [1, 2, 0]], dtype=torch.int32).t().contiguous().t()}, "tri"),
        ({"resolution": (8,)}, "resolution"),
        ({"resolution": (0, 8)}, "resolution"),
        ({"resolution": (8.5, 8)}, "resolution"),
        ({"pos": POS[0], "ranges": None}, "ranges"),
        ({"pos": POS[0], "ranges": torch.tensor([[0, 2]], dtype=torch.int32)}, "ranges"),
        ({"pos": POS[0], "ranges": torch.tensor([[0, 1]], dtype=torch.int64)}, "ranges"),
        ({"backend": "opengl"}, "backend"),
    ],
)
def test_rasterize_rejects(kwargs, name):
    args = {"pos": POS, "tri": TRI, "resolution": (8, 8)} | kwargs
    with pytest.raises(ValueError, match=rf"^{name}"):
        R.rasterize(**args)


def test_rasterize_rejects_a_non_tensor():
    with pytest.raises(ValueError, match="^pos: expected a torch.Tensor"):
        R.rasterize(POS.tolist(), TRI, (8, 8))


def test_interpolate_rejects():
    rast, rast_db = _rast()
    attr = torch.rand(1, 3, 2)
    with pytest.raises(ValueError, match="^attr"):
        R.interpolate(attr.int(), rast, TRI)
    with pytest.raises(ValueError, match="^attr"):
        R.interpolate(torch.rand(2, 3, 2), torch.cat((rast, rast, rast)), TRI)
    with pytest.raises(ValueError, match="^rast"):
        R.interpolate(attr, rast[..., :3].contiguous(), TRI)
    with pytest.raises(ValueError, match="^tri"):
        R.interpolate(torch.rand(1, 2, 2), rast, TRI)  # index 2 out of range for 2 vertices
    with pytest.raises(ValueError, match="^diff_attrs"):
        R.interpolate(attr, rast, TRI, rast_db, diff_attrs=[2])
    with pytest.raises(ValueError, match="^diff_attrs"):
        R.interpolate(attr, rast, TRI, rast_db, diff_attrs="some")
    with pytest.raises(ValueError, match="^rast_db"):
        R.interpolate(attr, rast, TRI, rast_db[:, :4].contiguous(), diff_attrs="all")


def test_texture_rejects():
    tex, uv = torch.rand(1, 8, 8, 3), torch.rand(1, 4, 4, 2)
    cases = [
        (dict(tex=tex.int()), "tex"),
        (dict(tex=tex.permute(0, 2, 1, 3)), "tex"),
        (dict(tex=torch.rand(2, 8, 8, 3), uv=torch.rand(3, 4, 4, 2)), "tex"),
        (dict(uv=uv[..., :1].contiguous()), "uv"),
        (dict(uv_da=torch.rand(1, 4, 4, 3)), "uv_da"),
        (dict(mip_level_bias=torch.rand(1, 4, 5)), "mip_level_bias"),
        (dict(filter_mode="cubic"), "filter_mode"),
        (dict(boundary_mode="mirror"), "boundary_mode"),
        (dict(boundary_mode="cube"), "tex"),  # a 2-D texture in cube mode
        (dict(tex=torch.rand(1, 6, 4, 8, 3), boundary_mode="cube", uv=torch.rand(1, 4, 4, 3)), "tex"),
        (dict(mip=[torch.rand(1, 3, 3, 3)], filter_mode="linear-mipmap-linear"), r"mip\[0\]"),
        (dict(mip="levels", filter_mode="linear-mipmap-linear"), "mip"),
        (dict(max_mip_level=-1), "max_mip_level"),
        (dict(tex=torch.rand(1, 6, 6, 3), mip_level_bias=torch.zeros(1, 4, 4)), "tex"),  # odd mip size
    ]
    for kwargs, name in cases:
        args = {"tex": tex, "uv": uv} | kwargs
        with pytest.raises(ValueError, match=rf"^{name}"):
            R.texture(**args)


def test_antialias_rejects():
    rast, _ = _rast()
    color = torch.rand(1, 8, 8, 3)
    with pytest.raises(ValueError, match="^color"):
        R.antialias(torch.rand(1, 8, 7, 3), rast, POS, TRI)
    with pytest.raises(ValueError, match="^pos"):
        R.antialias(color, rast, torch.cat((POS, POS)), TRI)
    with pytest.raises(ValueError, match="^topology_hash"):
        R.antialias(color, rast, POS, TRI, topology_hash="hash")
    other = R.antialias_construct_topology_hash(torch.tensor([[0, 2, 1]], dtype=torch.int32))
    with pytest.raises(ValueError, match="^topology_hash"):
        R.antialias(color, rast, POS, TRI, topology_hash=other)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device to mix devices")
def test_mixed_devices_are_rejected():
    with pytest.raises(ValueError, match="^tri"):
        R.rasterize(POS.cuda(), TRI, (8, 8))
