"""The compiled visibility scan (numba) against its torch twin: the same packed keys, bit for bit."""

from __future__ import annotations

import math
import sys

import pytest
import torch

from geometry.primitives import uv_sphere
from render.camera import look_at, perspective, to_clip
from render.raster.torch_backend import scan_cpu
from tests.render.raster.reference import random_scene

raster_module = sys.modules["render.raster.torch_backend.rasterize"]  # the package re-exports the function
pytestmark = pytest.mark.skipif(not scan_cpu.available(), reason="needs numba")


def _keys(pos: torch.Tensor, tri: torch.Tensor, height: int, width: int, compiled: bool, monkeypatch):
    monkeypatch.setattr(scan_cpu, "available", lambda: compiled)
    return raster_module._visibility(pos, tri.long(), height, width, None)


def _sphere_views(count: int) -> tuple[torch.Tensor, torch.Tensor]:
    vertices, _, faces = uv_sphere(48, 96)
    projection = perspective(0.8, 1.0, 0.1, 10.0)
    mvps = []
    for k in range(count):
        angle = 2 * math.pi * k / count
        eye = (2.5 * math.cos(angle), 2.5 * math.sin(angle), 0.7)
        mvps.append(projection @ look_at(eye))
    clip = to_clip(vertices.float(), torch.stack(mvps).float())
    return clip.contiguous(), faces.int()


def test_sphere_in_several_views(monkeypatch):
    pos, tri = _sphere_views(5)
    compiled = _keys(pos, tri, 61, 77, True, monkeypatch)
    twin = _keys(pos, tri, 61, 77, False, monkeypatch)
    assert torch.equal(compiled, twin)
    assert (compiled != raster_module._EMPTY_KEY).float().mean() > 0.2  # the sphere covers the views


@pytest.mark.parametrize("seed", range(4))
def test_overlapping_random_triangles(seed, monkeypatch):
    """Random scenes: overlaps, triangles crossing the camera plane, screen-filling ones."""
    scene = random_scene(40, seed)
    pos = scene.clip[None].float().contiguous()
    tri = torch.from_numpy(scene.tri).int()
    pos = torch.cat((pos, pos * torch.tensor([1.0, -1.0, 1.0, 1.0]), pos * 3.0))  # three views
    assert torch.equal(
        _keys(pos, tri, 33, 47, True, monkeypatch), _keys(pos, tri, 33, 47, False, monkeypatch)
    )


def test_screen_filling_and_non_finite_triangles(monkeypatch):
    pos = torch.tensor([[[-30.0, -30, 0, 1], [30, -30, 0, 1], [0, 40, 0, 1],
                         [-1, -1, -0.5, 1], [1, -1, -0.5, 1], [0, 1, -0.5, 1],
                         [float("nan"), 0, 0, 1], [1, 1, 0, 1], [0, 1, 0, 1]]])  # fmt: skip
    tri = torch.tensor([[0, 1, 2], [3, 4, 5], [6, 7, 8]], dtype=torch.int32)
    compiled = _keys(pos, tri, 40, 50, True, monkeypatch)
    assert torch.equal(compiled, _keys(pos, tri, 40, 50, False, monkeypatch))
    ids = compiled & 0xFFFFFFFF
    assert set(ids.unique().tolist()) == {0, 1}  # the big one, the nearer small one; never the NaN one
