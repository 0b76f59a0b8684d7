"""Learning tests: fit the SDF network to Spot (or an analytic shape when the data is absent) by
(a) signed-distance samples and (b) through marching cubes with a vertex-position loss."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch

from geometry.distance import mesh_chamfer_distance, point_mesh_distance, sample_surface, signed_distance
from geometry.extraction import GridConfig, extract_mesh
from geometry.obj import read_obj
from geometry.regularizers import eikonal_loss, eikonal_points
from geometry.sdf import SDFNetwork, SDFNetworkConfig
from tests.geometry.analytic import box, torus
from tests.helpers import SHARED

SPOT = SHARED / "spot" / "spot.obj"
CHAMFER_LIMIT = 0.008  # world units; a 64^3 cell is ~0.03 for Spot's box


@dataclass
class Target:
    name: str
    vertices: torch.Tensor
    faces: torch.Tensor
    lower: torch.Tensor
    upper: torch.Tensor
    analytic: Callable[[torch.Tensor], torch.Tensor] | None = None

    def sdf(self, points: torch.Tensor) -> torch.Tensor:
        if self.analytic is not None:
            return self.analytic(points)
        return signed_distance(points, self.vertices, self.faces)

    def distance(self, points: torch.Tensor) -> torch.Tensor:
        """Differentiable unsigned distance to the target surface."""
        if self.analytic is not None:
            return self.analytic(points).abs()
        return point_mesh_distance(points, self.vertices, self.faces, candidates=8)


@pytest.fixture(scope="module", params=["box+torus", "spot"])
def target(request) -> Target:
    """The surface to learn: an analytic box with a torus through it always, and Spot when ../shared has
    it (skipped otherwise)."""
    if request.param == "spot":
        if not SPOT.exists():
            pytest.skip("../shared/data/spot is not available")
        mesh = read_obj(SPOT)
        lower, upper = mesh.vertices.min(0).values - 0.1, mesh.vertices.max(0).values + 0.1
        return Target("spot", mesh.vertices, mesh.faces, lower, upper)

    def shape(p):  # a box with a torus through it: genus 1, flat faces, sharp edges
        return torch.minimum(box(p, (0.35, 0.35, 0.35)), torus(p, 0.6, 0.12))

    lower, upper = torch.full((3,), -1.0), torch.full((3,), 1.0)
    vertices, faces, _ = extract_mesh(shape, lower, upper, GridConfig(128))
    return Target("box+torus (analytic)", vertices, faces, lower, upper, shape)


def make_network(target: Target) -> tuple[SDFNetwork, torch.optim.Optimizer]:
    config = SDFNetworkConfig(
        bbox_min=tuple(target.lower.tolist()), bbox_max=tuple(target.upper.tolist()), init_radius=0.6
    )
    network = SDFNetwork(config, seed=0)
    optimizer = torch.optim.Adam(
        [
            {"params": network.encoding.parameters(), "lr": 1e-2},
            {"params": network.layers.parameters(), "lr": 1e-3},
        ]
    )
    return network, optimizer


@pytest.fixture(scope="module")
def fitted_by_samples(target: Target):
    """(a): L1 on signed distances at 12k samples (near the surface and uniform) + Eikonal."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    start = time.perf_counter()
    surface = sample_surface(target.vertices, target.faces, 4500, generator)[0]
    points = torch.cat(
        (
            surface + 0.01 * torch.randn(surface.shape, generator=generator),
            surface + 0.05 * torch.randn(surface.shape, generator=generator),
            torch.rand(3000, 3, generator=generator) * (target.upper - target.lower) + target.lower,
        )
    )
    distances = target.sdf(points)
    network, optimizer = make_network(target)
    for _ in range(300):
        batch = torch.randint(len(points), (4096,), generator=generator)
        loss = (network.sdf(points[batch]) - distances[batch]).abs().mean()
        eikonal = eikonal_loss(network.sdf, eikonal_points(1024, target.lower, target.upper, surface), 5e-3)
        optimizer.zero_grad()
        (loss + 0.1 * eikonal).backward()
        optimizer.step()
    return network, time.perf_counter() - start


def chamfer_to_target(network: SDFNetwork, target: Target) -> tuple[float, int]:
    """Symmetric point-to-surface Chamfer distance of the 64^3 extraction (20k samples each way)."""
    with torch.no_grad():
        vertices, faces, _ = extract_mesh(network.sdf, network.lower, network.upper, GridConfig(64))
    generator = torch.Generator().manual_seed(1)
    if target.analytic is None:
        chamfer = mesh_chamfer_distance(vertices, faces, target.vertices, target.faces, 20000, generator)
    else:  # exact distance to the analytic surface one way, to our mesh the other way
        ours = sample_surface(vertices, faces, 20000, generator)[0]
        theirs = sample_surface(target.vertices, target.faces, 20000, generator)[0]
        chamfer = 0.5 * (target.distance(ours).mean() + point_mesh_distance(theirs, vertices, faces).mean())
    return float(chamfer), len(faces)


def check_fit(report, label: str, network: SDFNetwork, target: Target, seconds: float) -> None:
    chamfer, n_faces = chamfer_to_target(network, target)
    report(f"{label}: Chamfer {chamfer:.4f} at 64^3 ({n_faces} faces), {seconds:.1f} s")
    assert chamfer < CHAMFER_LIMIT


def test_fit_by_sdf_samples(target, fitted_by_samples, report):
    network, seconds = fitted_by_samples
    check_fit(report, f"fit (a) {target.name} by SDF samples (time incl. targets)", network, target, seconds)


def test_fit_through_marching_cubes(target, report):
    """(b): every step extracts the mesh (48^3, narrow band); the loss is on vertex positions only (mean
    distance of vertices to the target surface + of target samples to their nearest vertex), so all
    shape gradients pass through marching cubes; plus Eikonal."""
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    network, optimizer = make_network(target)
    grid = GridConfig(48, coarse_resolution=12)
    start = time.perf_counter()
    initial, _ = chamfer_to_target(network, target)
    for _ in range(150):
        vertices, _, _ = extract_mesh(network.sdf, network.lower, network.upper, grid)
        samples = sample_surface(target.vertices, target.faces, 3000, generator)[0]
        pick = torch.randperm(len(vertices), generator=generator)[:3000]
        to_target = target.distance(vertices[pick]).mean()
        nearest = torch.cdist(samples, vertices.detach()).argmin(1)
        from_target = (samples - vertices[nearest]).norm(dim=-1).mean()
        near = eikonal_points(1024, network.lower, network.upper, vertices, 0.02, generator)
        loss = to_target + from_target + 0.1 * eikonal_loss(network.sdf, near, 5e-3)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    seconds = time.perf_counter() - start
    label = f"fit (b) {target.name} through marching cubes from the sphere (Chamfer {initial:.4f})"
    check_fit(report, label, network, target, seconds)


def test_narrow_band_equals_full_on_a_fitted_network(fitted_by_samples, report):
    network, _ = fitted_by_samples
    with torch.no_grad():
        full_v, full_f, full = extract_mesh(network.sdf, network.lower, network.upper, GridConfig(128, False))
        band_v, band_f, band = extract_mesh(network.sdf, network.lower, network.upper, GridConfig(128))
    assert torch.equal(full_f, band_f) and torch.equal(full_v, band_v)
    report(
        f"narrow band 128^3 fitted network: {band.evaluated} of {full.evaluated} points evaluated, "
        f"{len(band_v)} vertices, same mesh as full"
    )
