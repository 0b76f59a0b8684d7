"""SDF network: geometric initialization, world units, configuration errors."""

from __future__ import annotations

import pytest
import torch

from data.errors import ConfigError
from geometry.encoding import HashGridConfig
from geometry.regularizers import eikonal_loss
from geometry.sdf import SDFNetwork, SDFNetworkConfig


@pytest.mark.parametrize(
    ("lower", "upper", "radius"),
    [((-1.0, -1.0, -1.0), (1.0, 1.0, 1.0), 0.5), ((2.0, 0.0, -1.0), (6.0, 3.0, 1.0), 1.2)],
)
def test_geometric_init_is_a_sphere_in_world_units(lower, upper, radius):
    config = SDFNetworkConfig(bbox_min=lower, bbox_max=upper, init_radius=radius)
    network = SDFNetwork(config, seed=0)
    centre = (torch.tensor(lower) + torch.tensor(upper)) / 2
    scale = float((torch.tensor(upper) - torch.tensor(lower)).max() / 2)
    points = centre + (torch.rand(2000, 3) * 2 - 1) * scale
    exact = (points - centre).norm(dim=-1) - radius
    with torch.no_grad():
        error = (network.sdf(points) - exact).abs()
    assert float(error.max()) < 1e-3 * scale
    with torch.no_grad():
        assert float(eikonal_loss(network.sdf, points[:500], 1e-3 * scale)) < 0.01
    torch.testing.assert_close(network.lower, centre - scale)
    torch.testing.assert_close(network.upper, centre + scale)


def test_outputs_and_features():
    network = SDFNetwork(SDFNetworkConfig(feature_dim=5, encoding=HashGridConfig(n_levels=2)), seed=0)
    sdf, features = network(torch.rand(4, 7, 3))
    assert sdf.shape == (4, 7) and features.shape == (4, 7, 5)
    sdf.sum().backward()
    assert all(p.grad is not None for p in network.parameters())


def test_double_precision_and_encoding_gradient():
    network = SDFNetwork(SDFNetworkConfig(encoding=HashGridConfig(n_levels=2, log2_hashmap_size=8)), seed=0)
    network = network.double()
    points = torch.rand(16, 3, dtype=torch.float64)
    assert network.sdf(points).dtype == torch.float64
    network.sdf(points).sum().backward()
    assert float(network.encoding.params.grad.abs().sum()) > 0


@pytest.mark.parametrize(
    ("changes", "key"),
    [
        ({"bbox_min": (0.0, 0.0, 0.0), "bbox_max": (1.0, 0.0, 1.0)}, "bbox_max"),
        ({"init_radius": 0.0}, "init_radius"),
        ({"hidden_dim": 0}, "hidden_dim"),
        ({"encoding": HashGridConfig(n_levels=0)}, "encoding.n_levels"),
    ],
)
def test_config_errors_name_the_key(changes, key):
    with pytest.raises(ConfigError, match=rf"^{key}=.*: expected"):
        SDFNetwork(SDFNetworkConfig(**changes))


def test_active_levels_mask_the_finer_levels():
    config = SDFNetworkConfig(encoding=HashGridConfig(n_levels=4, log2_hashmap_size=12))
    network = SDFNetwork(config, seed=0)
    points = torch.rand(256, 3) * 2 - 1
    with torch.no_grad():
        network.encoding.params.mul_(1e3)  # make every level matter
        full = network.sdf(points)
    network.set_active_levels(2)
    coarse = network.sdf(points)
    assert not torch.allclose(coarse.detach(), full)
    reference = SDFNetwork(config, seed=0)
    reference.load_state_dict(network.state_dict())
    features = 2 * config.encoding.n_features_per_level
    encode = reference.encoding.forward
    reference.encoding.forward = lambda x: torch.cat(
        (encode(x)[:, :features], encode(x)[:, features:] * 0), -1
    )
    torch.testing.assert_close(coarse, reference.sdf(points))
    coarse.sum().backward()
    per_entry = network.encoding.params.grad.view(-1, config.encoding.n_features_per_level)
    start = network.encoding.layout.offset[2]
    assert float(per_entry[start:].abs().max()) == 0.0 and float(per_entry[:start].abs().max()) > 0
    network.set_active_levels(99)
    assert network.active_levels == 4
