"""The work outside the training steps also follows train.threads=auto: the ambient-occlusion passes,
the texture bake's chunks and the evaluation's views each look at the load (geometry.cpu_threads)."""

from __future__ import annotations

import torch

from data.cameras import Camera
from geometry import cpu_threads
from geometry.cpu_threads import ThreadPolicy
from geometry.mesh import unwrap_uv
from geometry.primitives import uv_sphere
from recon.asset.bake import bake_textures
from recon.evaluation.metrics import views_seeing
from render.occlusion import vertex_occlusion
from tests.helpers import CountingLoad


def two_cameras() -> Camera:
    """Cameras on the +Z and -Z axes, 3 units out, looking at the origin (32 x 32 pixels)."""
    c2w = torch.eye(4).repeat(2, 1, 1)
    c2w[0, 2, 3] = 3.0
    c2w[1, :3, :3] = torch.diag(torch.tensor([-1.0, 1.0, -1.0]))
    c2w[1, 2, 3] = -3.0
    return Camera(c2w, 40.0, 40.0, 16.0, 16.0, 32, 32)


def test_occlusion_bake_and_evaluation_views_adapt():
    vertices, _, faces = uv_sphere(8, 16)
    vertices, faces = vertices.float(), faces.long()
    load = CountingLoad()
    with cpu_threads.installed(ThreadPolicy(fixed=None, ceiling=2, cores=2, load=load, threads=2)):
        vertex_occlusion(vertices, faces, directions=8, resolution=16, views_per_pass=4)
        assert load.looks == 2  # one per pass
        uv, uv_faces = unwrap_uv(vertices, faces, resolution=32)

        def material(points):
            return points.abs(), points[:, :1].abs(), points[:, :1].abs()

        bake_textures(material, vertices, faces, uv, uv_faces, resolution=32, chunk=64)
        assert load.looks > 3  # one per chunk of texels
        looks = load.looks
        points = vertices[:4]
        views_seeing(points, points, vertices, faces, two_cameras())
        assert load.looks == looks + 2  # one per view
        assert torch.get_num_threads() == 1
