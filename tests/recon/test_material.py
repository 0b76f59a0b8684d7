"""Material MLP: valid ranges, gradients, smoothness regularizer, fitting a procedural material."""

from __future__ import annotations

import pytest
import torch

from data.errors import ConfigError
from recon.scenes.procedural import procedural_material
from recon.train.material import MaterialConfig, MaterialMLP


def test_outputs_in_configured_ranges_and_unpack():
    config = MaterialConfig(roughness_range=(0.2, 0.7), metallic_range=(0.0, 0.0))
    material = MaterialMLP(config, seed=0)
    with torch.no_grad():
        for p in material.mlp.parameters():
            p.normal_(0, 3.0)  # saturate the sigmoids
    base, roughness, metallic = material(torch.rand(500, 3) * 4 - 2)  # also outside the box
    assert base.shape == (500, 3) and roughness.shape == metallic.shape == (500, 1)
    assert float(base.min()) >= 0 and float(base.max()) <= 1
    assert float(roughness.min()) >= 0.2 and float(roughness.max()) <= 0.7
    assert float(metallic.abs().max()) == 0.0


def test_gradients_and_smoothness():
    material = MaterialMLP(seed=0)
    points = torch.rand(256, 3) * 2 - 1
    loss = material.smoothness_loss(points, 0.05, torch.Generator().manual_seed(0))
    assert float(loss) > 0
    loss.backward()
    assert float(material.encoding.params.grad.abs().sum()) > 0
    with torch.no_grad():
        material.mlp[-1].weight.zero_()  # constant material: no change under jitter
    assert float(material.smoothness_loss(points, 0.05)) == 0.0


def test_surface_terms_are_the_separate_calls():
    """One network call on [x, x + noise] gives the smoothness of two calls and the material at x."""
    material = MaterialMLP(MaterialConfig(normal_perturbation=True), seed=0)
    points = torch.rand(300, 3) * 2 - 1
    loss, sample = material.surface_terms(points, 0.05, torch.Generator().manual_seed(3))
    noise = torch.randn(points.shape, generator=torch.Generator().manual_seed(3)) * 0.05
    a, b = material(points), material(points + noise)
    expected = torch.cat([(u - v).abs() for u, v in zip(a.as_tuple(), b.as_tuple(), strict=True)], -1).mean()
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-7)
    for got, want in zip(sample.as_tuple(), a.as_tuple(), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert len(sample.as_tuple()) == 4


def test_fits_a_procedural_material(report):
    torch.manual_seed(0)
    material = MaterialMLP(seed=0)
    test_points = torch.rand(4096, 3) * 2 - 1
    test_target = torch.cat(procedural_material(test_points), -1)

    def error() -> float:
        with torch.no_grad():
            return float((torch.cat(material(test_points).as_tuple(), -1) - test_target).abs().mean())

    initial = error()
    optimizer = torch.optim.Adam(material.parameters(), lr=1e-2)
    for _ in range(300):
        points = torch.rand(2048, 3) * 2 - 1
        loss = (
            (torch.cat(material(points).as_tuple(), -1) - torch.cat(procedural_material(points), -1))
            .abs()
            .mean()
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    final = error()
    report(f"material MLP fit, procedural material, 300 steps: mean abs error {initial:.3f} -> {final:.3f}")
    assert final < 0.07 and final < initial / 4  # the metallic step at x = 0.5 keeps a residual


@pytest.mark.parametrize(
    "changes", [{"roughness_range": (0.5, 0.2)}, {"metallic_range": (0.0, 1.5)}, {"hidden_dim": 0}]
)
def test_config_errors(changes):
    with pytest.raises(ConfigError, match=rf"^{next(iter(changes))}=.*: expected"):
        MaterialMLP(MaterialConfig(**changes))


def test_seed_makes_the_initialization_reproducible():
    torch.manual_seed(1)
    first = MaterialMLP(seed=3).state_dict()
    torch.manual_seed(2)
    second = MaterialMLP(seed=3).state_dict()
    assert all(torch.equal(first[name], second[name]) for name in first)
    assert not torch.equal(MaterialMLP(seed=4).state_dict()["mlp.0.weight"], first["mlp.0.weight"])
