"""Synthetic scenes: the procedural object's properties, the rendered views against the ground truth."""

from __future__ import annotations

import pytest
import torch
from scipy.spatial import ConvexHull

from data.dataset import MultiViewDataset, load_scene
from geometry.mesh import face_adjacency, face_normals
from geometry.obj import read_obj, write_obj
from geometry.primitives import uv_sphere
from recon.scenes.procedural import procedural_material, procedural_sky
from recon.scenes.synthetic import SyntheticConfig, make_synthetic_scene
from render.envmap import latlong_directions
from render.hdr import read_hdr, write_hdr
from tests.helpers import SHARED

SPOT = SHARED / "spot" / "spot.obj"
SMALL = {
    "n_train": 6,
    "n_val": 1,
    "n_test": 2,
    "resolution": 96,
    "mesh_resolution": 64,
    "light_resolution": 32,
}


def fraction_inside_alpha(scene, vertices: torch.Tensor) -> tuple[float, float]:
    """Fractions of (view, vertex) pairs projecting into covered pixels: exactly, and within one pixel."""
    dataset = MultiViewDataset(scene, "train", background="black")
    cameras = scene.cameras[dataset.views]
    xy, depth = cameras.project(vertices)
    x = xy[..., 0].floor().long().clamp(0, cameras.width - 1)
    y = xy[..., 1].floor().long().clamp(0, cameras.height - 1)
    alpha = dataset.rgba[..., 3].float()
    near = torch.nn.functional.max_pool2d(alpha[:, None], 3, 1, 1)[:, 0]
    views = torch.arange(len(cameras))[:, None]
    exact = (alpha[views, y, x] > 0) & (depth > 0)
    tolerant = (near[views, y, x] > 0) & (depth > 0)
    return float(exact.float().mean()), float(tolerant.float().mean())


def mesh_volume(vertices: torch.Tensor, faces: torch.Tensor) -> float:
    a, b, c = (vertices[faces[:, k]].double() for k in range(3))
    return float((a * torch.cross(b, c, dim=-1)).sum() / 6)


def test_procedural_scene(tmp_path, report):
    synthetic = make_synthetic_scene(tmp_path, SyntheticConfig(**SMALL))
    scene = load_scene(tmp_path)
    assert {k: len(v) for k, v in scene.splits.items()} == {"train": 6, "val": 1, "test": 2}
    mesh = read_obj(tmp_path / "gt_mesh.obj")
    vertices, faces = mesh.vertices, mesh.faces
    torch.testing.assert_close(vertices, synthetic.mesh.vertices, atol=1e-5, rtol=0)
    # Closed, genus 1 (Euler characteristic 0), concave (well below its convex hull's volume).
    edges = torch.cat((faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]])).sort(1).values
    n_edges = len(torch.unique(edges, dim=0))
    assert len(face_adjacency(faces)) == n_edges == 3 * len(faces) // 2
    assert len(vertices) - n_edges + len(faces) == 0
    ratio = mesh_volume(vertices, faces) / ConvexHull(vertices.numpy()).volume
    assert ratio < 0.95  # a convex object gives ~1
    # Spatially varying materials.
    base, roughness, metallic = procedural_material(vertices)
    assert float(base.std(0).mean()) > 0.1 and float(roughness.max() - roughness.min()) > 0.3
    assert 0 < float(metallic.mean()) < 0.5
    # The views agree with the ground-truth mesh (validates cameras, the renderer's vertical flip, PNGs).
    exact, tolerant = fraction_inside_alpha(scene, vertices)
    assert exact > 0.9 and tolerant > 0.999  # exact misses are silhouette vertices between pixel centres
    # The visual hull of 6 views bounds the object tightly: normalized radius in (0.6, 0.8].
    normalized = MultiViewDataset(scene, "train").transform.to_normalized(vertices).norm(dim=-1).max()
    assert 0.6 < float(normalized) <= 0.8
    environment = read_hdr(tmp_path / "env.hdr")
    assert environment.shape == synthetic.environment.shape
    torch.testing.assert_close(
        torch.as_tensor(environment).float(), synthetic.environment, rtol=0.02, atol=1e-3
    )
    report(
        f"synthetic procedural scene: genus 1, volume/hull {ratio:.2f}, gt vertices inside alpha "
        f"{100 * exact:.1f}% (exact pixel) / {100 * tolerant:.2f}% (1 px)"
    )


@pytest.mark.parametrize("mesh", ["sphere", "spot"])
def test_reference_mesh_scene(tmp_path, mesh):
    """Any OBJ as the object, under a user's environment file: a sphere always, and Keenan Crane's
    textured Spot when ../shared has it."""
    if mesh == "spot":
        if not SPOT.exists():
            pytest.skip("../shared/data/spot is not available")
        path = SPOT
    else:
        vertices, _, faces = uv_sphere(16, 32, 0.7)
        path = tmp_path / "sphere.obj"
        write_obj(path, vertices.float(), faces.long())
    sky = tmp_path / "sky.hdr"  # a user environment file instead of the built-in sky
    write_hdr(sky, procedural_sky(latlong_directions(16)) * 0.5)
    config = SyntheticConfig(object=str(path), environment=str(sky), **SMALL)
    synthetic = make_synthetic_scene(tmp_path / "scene", config)
    torch.testing.assert_close(synthetic.environment, torch.as_tensor(read_hdr(sky)).float())
    dataset = MultiViewDataset(synthetic.scene, "train", background="black")
    coverage = float(dataset.rgba[..., 3].float().mean() / 255)
    assert 0.05 < coverage < 0.9
    exact, tolerant = fraction_inside_alpha(synthetic.scene, synthetic.mesh.vertices)
    assert tolerant > 0.999
    if mesh == "spot":  # textured: the base colour varies across the image
        rgb = dataset.rgba[..., :3][dataset.rgba[..., 3] == 255].float()
        assert float(rgb.std(0).mean()) > 10
    normals = face_normals(synthetic.mesh.vertices, synthetic.mesh.faces)
    assert bool(torch.isfinite(normals).all())


def test_concave_object_has_a_tunnel_and_a_pocket():
    """The "concave" object: closed, genus 1 (the tunnel), and a quarter of its surface inside the tunnel
    and the pocket, where the visual hull is far from the surface."""
    from geometry.distance import sample_surface
    from recon.scenes.procedural import concave_sdf
    from recon.scenes.synthetic import build_object

    mesh, _ = build_object(SyntheticConfig(object="concave", mesh_resolution=96))
    vertices, faces = mesh.vertices, mesh.faces
    edges = torch.unique(
        torch.cat((faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]])).sort(1).values, dim=0
    )
    assert len(face_adjacency(faces)) == len(edges) == 3 * len(faces) // 2
    assert len(vertices) - len(edges) + len(faces) == 0
    points, _ = sample_surface(vertices, faces, 20000, generator=torch.Generator().manual_seed(0))
    assert float(concave_sdf(points).abs().max()) < 0.02  # the mesh is the SDF's zero set
    in_tunnel = (torch.stack((points[:, 0] + 0.25, points[:, 2]), -1).norm(dim=-1) < 0.16) & (
        points[:, 1].abs() < 0.34
    )
    in_pocket = (torch.stack((points[:, 0] - 0.28, points[:, 1]), -1).norm(dim=-1) < 0.18) & (
        points[:, 2] < 0.34
    )
    assert 0.1 < float(in_tunnel.float().mean()) < 0.17 and 0.08 < float(in_pocket.float().mean()) < 0.15
