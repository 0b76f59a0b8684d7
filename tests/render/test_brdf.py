import math

import pytest
import torch

from render.brdf import (
    MIN_ROUGHNESS,
    burley_factor,
    evaluate_brdf,
    ggx_ndf,
    safe_normalize,
    smith_visibility,
)
from render.dfg import integrate_dfg


def _hemisphere_grid(n_theta: int = 400, n_phi: int = 200):
    """Midpoint quadrature of the upper hemisphere: directions [N, 3] and solid angles [N]."""
    theta = (torch.arange(n_theta, dtype=torch.float64) + 0.5) * (math.pi / 2) / n_theta
    phi = (torch.arange(n_phi, dtype=torch.float64) + 0.5) * 2 * math.pi / n_phi
    t, p = torch.meshgrid(theta, phi, indexing="ij")
    d = torch.stack((torch.sin(t) * torch.cos(p), torch.sin(t) * torch.sin(p), torch.cos(t)), -1)
    weight = torch.sin(t) * (math.pi / 2 / n_theta) * (2 * math.pi / n_phi)
    return d.reshape(-1, 3), weight.reshape(-1)


@pytest.mark.parametrize("alpha", [0.05, 0.2, 0.5, 1.0])
def test_ggx_ndf_is_normalized(alpha):
    # Integrate over cos(theta) directly for small alpha, where the peak is narrow.
    cos_h = torch.linspace(0, 1, 200001, dtype=torch.float64)
    integrand = ggx_ndf(cos_h, torch.tensor(alpha, dtype=torch.float64)) * cos_h * 2 * math.pi
    assert torch.trapezoid(integrand, cos_h).item() == pytest.approx(1.0, abs=1e-4)


def _albedo(n_dot_v, roughness, metallic, base, diffuse="lambert"):
    """Directional albedo: integral of f (n.l) over the hemisphere, by quadrature."""
    l, dw = _hemisphere_grid()
    v = torch.tensor([math.sqrt(1 - n_dot_v**2), 0.0, n_dot_v], dtype=torch.float64).expand_as(l)
    n = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64).expand_as(l)
    count = l.shape[0]
    f = evaluate_brdf(
        n,
        v,
        l,
        torch.full((count, 3), base, dtype=torch.float64),
        torch.full((count, 1), roughness, dtype=torch.float64),
        torch.full((count, 1), metallic, dtype=torch.float64),
        diffuse,
    )
    return (f[:, 0] * l[:, 2] * dw).sum().item()


def test_lambert_lobe_reflects_its_albedo():
    # The diffuse part is the difference to a black dielectric (same F0 = 0.04 specular).
    assert _albedo(0.7, 0.5, 0.0, 0.6) - _albedo(0.7, 0.5, 0.0, 0.0) == pytest.approx(0.6, abs=1e-3)


@pytest.mark.parametrize("roughness", [0.08, 0.3, 0.6, 1.0])
@pytest.mark.parametrize("n_dot_v", [0.2, 0.6, 1.0])
def test_split_sum_table_matches_quadrature(roughness, n_dot_v):
    # Two independent integrations of the same BRDF: GGX importance sampling (the table) and a
    # midpoint quadrature of the hemisphere (here, skipped for the narrow lobe at roughness 0.08).
    a, b, _ = integrate_dfg(
        torch.tensor(n_dot_v, dtype=torch.float64), torch.tensor(roughness, dtype=torch.float64), 4096
    )
    if roughness >= 0.3:
        white_metal = _albedo(n_dot_v, roughness, 1.0, 1.0)
        assert white_metal <= 1.0 + 1e-3  # single scattering never creates energy
        assert (a + b).item() == pytest.approx(white_metal, rel=0.01)
        assert b.item() == pytest.approx(_albedo(n_dot_v, roughness, 1.0, 0.0), abs=0.005)  # F0 = 0
        assert (0.04 * a + b).item() == pytest.approx(_albedo(n_dot_v, roughness, 0.0, 0.0), abs=0.005)
    else:
        assert 0.9 < (a + b).item() <= 1.0 + 1e-3


def test_smith_height_correlated_limits():
    alpha = torch.tensor(0.5, dtype=torch.float64)
    one = torch.tensor(1.0, dtype=torch.float64)
    # Normal incidence both ways: V = 0.5 / (2 * 1) = 0.25 whatever alpha (G2 = 1).
    assert smith_visibility(one, one, alpha).item() == pytest.approx(0.25)
    assert smith_visibility(one, torch.tensor(0.0, dtype=torch.float64), alpha).item() == pytest.approx(1.0)


def test_burley_is_lambert_at_normal_incidence_and_half_roughness():
    one = torch.tensor(1.0)
    # F90 = 0.5 + 2 r (l.h)^2 and both factors are 1 at normal incidence.
    assert burley_factor(one, one, one, torch.tensor(0.25)).item() == pytest.approx(1.0)


def test_safe_everywhere():
    n = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0], [0.0, 0.0, 0.0], [0.0, 0.0, 1.0], [1e-30, 0, 0]])
    v = torch.tensor([[1.0, 0.0, 1e-7], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    l = torch.tensor([[-1.0, 0.0, 1e-7], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    n, v, l = (x.clone().requires_grad_() for x in (n, v, l))
    base = torch.rand(5, 3, requires_grad=True)
    rough = torch.tensor([[0.0], [0.0], [0.5], [0.0], [1.0]], requires_grad=True)
    metal = torch.rand(5, 1, requires_grad=True)
    for diffuse in ("lambert", "burley"):
        f = evaluate_brdf(n, v, l, base, rough, metal, diffuse)
        assert torch.isfinite(f).all()
        f.sum().backward()
        for t in (n, v, l, base, rough, metal):
            assert torch.isfinite(t.grad).all()
    # Roughness below the minimum is clamped: same value as MIN_ROUGHNESS.
    args = (n[3:4], v[3:4], safe_normalize(torch.tensor([[0.1, 0.0, 1.0]])), base[3:4])
    low = evaluate_brdf(*args, torch.tensor([[0.0]]), metal[3:4])
    at_min = evaluate_brdf(*args, torch.tensor([[MIN_ROUGHNESS]]), metal[3:4])
    assert torch.equal(low, at_min)


def test_light_below_the_horizon_contributes_nothing():
    n = torch.tensor([[0.0, 0.0, 1.0]])
    f = evaluate_brdf(
        n,
        torch.tensor([[0.0, 0.3, 1.0]]),
        torch.tensor([[0.0, 0.3, -1.0]]),
        torch.ones(1, 3),
        torch.full((1, 1), 0.5),
        torch.zeros(1, 1),
    )
    assert torch.count_nonzero(f) == 0


@pytest.mark.parametrize("diffuse", ["lambert", "burley"])
def test_gradcheck_brdf(diffuse):
    torch.manual_seed(0)
    n = torch.tensor([[0.1, 0.2, 1.0], [0.3, -0.2, 0.9]], dtype=torch.float64, requires_grad=True)
    v = torch.tensor([[0.5, 0.1, 0.8], [-0.2, 0.4, 0.7]], dtype=torch.float64, requires_grad=True)
    l = torch.tensor([[-0.3, 0.2, 0.9], [0.6, 0.1, 0.5]], dtype=torch.float64, requires_grad=True)
    base = torch.rand(2, 3, dtype=torch.float64, requires_grad=True)
    rough = torch.tensor([[0.4], [0.7]], dtype=torch.float64, requires_grad=True)
    metal = torch.tensor([[0.3], [0.8]], dtype=torch.float64, requires_grad=True)
    fn = lambda *a: evaluate_brdf(*a, diffuse=diffuse)  # noqa: E731
    assert torch.autograd.gradcheck(fn, (n, v, l, base, rough, metal))


def test_unknown_diffuse_model_is_a_clear_error():
    x = torch.ones(1, 3)
    with pytest.raises(ValueError, match="diffuse: expected one of"):
        evaluate_brdf(x, x, x, x, x[:, :1], x[:, :1], "oren-nayar")
