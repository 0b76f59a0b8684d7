"""Hash-grid encoding: tinycudann's layout, a per-point reference, gradients, bounds and backends."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from data.errors import ConfigError
from geometry import hashgrid_cpu
from geometry.encoding import (
    EncodingBackendError,
    HashGridConfig,
    HashGridEncoding,
    hash_grid_torch,
    level_layout,
    tcnn_available,
)
from geometry.gather import gather_table_rows

needs_numba = pytest.mark.skipif(not hashgrid_cpu.available(), reason="needs numba")
CPU_BACKENDS = ["torch", pytest.param("numba", marks=needs_numba)]
"""The CPU implementations: the torch twin and the compiled loops; each must meet every reference."""

TINY = HashGridConfig(
    n_levels=4, n_features_per_level=2, log2_hashmap_size=8, base_resolution=4, per_level_scale=2.0
)


def reference_encoding(x: np.ndarray, params: np.ndarray, config: HashGridConfig) -> np.ndarray:
    """Per point, per level, per corner: a direct transcription of the documented semantics (uint32)."""
    layout = level_layout(config)
    table = params.reshape(-1, config.n_features_per_level)
    out = np.zeros((len(x), config.n_levels * config.n_features_per_level))
    primes = (1, 2654435761, 805459861)
    for p, point in enumerate(np.clip(x, 0, 1)):
        for level in range(config.n_levels):
            pos = layout.scale[level] * point + 0.5
            base = np.floor(pos).astype(np.int64)
            frac = pos - base
            feature = np.zeros(config.n_features_per_level)
            for corner in range(8):
                offset = np.array([(corner >> 2) & 1, (corner >> 1) & 1, corner & 1])
                g = base + offset
                weight = np.prod(np.where(offset == 1, frac, 1 - frac))
                r = layout.resolution[level]
                if layout.hashed[level]:
                    index = 0
                    for d in range(3):
                        index ^= (int(g[d]) * primes[d]) & 0xFFFFFFFF
                else:
                    index = int(g[0] + g[1] * r + g[2] * r * r)
                feature += weight * table[layout.offset[level] + index % layout.size[level]]
            out[p, level * config.n_features_per_level : (level + 1) * config.n_features_per_level] = feature
    return out


def test_layout_matches_tinycudann_rules():
    layout = level_layout(HashGridConfig(n_levels=16, base_resolution=16, per_level_scale=32 ** (1 / 15)))
    assert layout.scale[0] == 15.0 and layout.resolution[0] == 16
    assert layout.scale[1] == pytest.approx(19.159, abs=1e-3) and layout.resolution[1] == 21
    assert layout.scale[15] == pytest.approx(511.0, abs=1e-2)  # float32: may land just above 511
    for scale, r, size, hashed in zip(
        layout.scale, layout.resolution, layout.size, layout.hashed, strict=True
    ):
        assert r == int(np.ceil(np.float32(scale))) + 1
        assert size % 8 == 0 and size <= 2**17
        assert hashed == (r**3 > 2**17)
        assert size == (-(-(r**3) // 8) * 8 if not hashed else 2**17)
    assert list(layout.offset[1:]) == list(np.cumsum(layout.size)[:-1])


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_matches_per_point_reference(backend):
    config = HashGridConfig(
        n_levels=6, log2_hashmap_size=10, base_resolution=4, per_level_scale=1.7, backend=backend
    )
    assert any(level_layout(config).hashed) and not all(level_layout(config).hashed)
    encoding = HashGridEncoding(config, seed=0).double()
    with torch.no_grad():
        encoding.params.uniform_(-1, 1)
    x = torch.rand(64, 3, dtype=torch.float64)
    x[:4] = torch.tensor([[0.0, 0, 0], [1, 1, 1], [1, 0, 0.5], [-0.5, 1.5, 0.25]])  # bounds, clamping
    expected = reference_encoding(x.numpy(), encoding.params.detach().numpy(), config)
    np.testing.assert_allclose(encoding(x).detach().numpy(), expected, atol=1e-12)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_float32_matches_per_point_reference(backend):
    """float32 tables of two features take the integer-row gather (geometry.gather.gather_table_rows)."""
    config = HashGridConfig(
        n_levels=6, log2_hashmap_size=10, base_resolution=4, per_level_scale=1.7, backend=backend
    )
    encoding = HashGridEncoding(config, seed=0)
    with torch.no_grad():
        encoding.params.uniform_(-1, 1)
    x = torch.rand(256, 3)
    expected = reference_encoding(x.double().numpy(), encoding.params.detach().double().numpy(), config)
    np.testing.assert_allclose(encoding(x).detach().numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("dtype, features", [(torch.float32, 1), (torch.float32, 2), (torch.float64, 1),
                                             (torch.float64, 2), (torch.float32, 3)])  # fmt: skip
def test_gather_table_rows_is_index_select_bit_for_bit(dtype, features):
    table = torch.randn(1000, features, dtype=dtype)
    table[3] = float("nan")  # bits, not values: NaN payloads and signed zeros survive
    table[4] = -0.0
    index = torch.randint(1000, (5000,))
    index[:2] = torch.tensor([3, 4])
    got, expected = gather_table_rows(table, index), table.index_select(0, index)
    assert got.dtype == dtype and got.shape == expected.shape
    assert torch.equal(got.view(torch.uint8), expected.view(torch.uint8))
    strided = table.t().contiguous().t()  # not contiguous: the plain index_select
    assert torch.equal(gather_table_rows(strided, index).view(torch.uint8), expected.view(torch.uint8))


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_reproduces_linear_fields_on_dense_levels(backend):
    """Trilinear interpolation of vertex values f(i, j, k) = a.(i, j, k) + b is exact."""
    config = HashGridConfig(
        n_levels=1, n_features_per_level=1, log2_hashmap_size=12, base_resolution=9, backend=backend
    )
    encoding = HashGridEncoding(config).double()
    r = encoding.layout.resolution[0]
    i, j, k = np.unravel_index(np.arange(r**3), (r, r, r), order="F")  # index = i + j r + k r^2
    with torch.no_grad():
        encoding.params.zero_()
        encoding.params[: r**3] = torch.from_numpy(0.5 * i - 2.0 * j + 0.25 * k + 3.0)
    # Below the last half cell: past it, a corner falls off the grid and wraps (tinycudann's behaviour).
    x = torch.rand(200, 3, dtype=torch.float64) * (r - 1.5) / encoding.layout.scale[0]
    pos = x * encoding.layout.scale[0] + 0.5
    expected = 0.5 * pos[:, 0] - 2.0 * pos[:, 1] + 0.25 * pos[:, 2] + 3.0
    torch.testing.assert_close(encoding(x)[:, 0], expected)


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_gradcheck_table_and_positions(backend):
    layout = level_layout(TINY)
    assert any(layout.hashed) and not all(layout.hashed)
    generator = torch.Generator().manual_seed(0)
    params = (
        torch.rand(layout.n_entries * 2, dtype=torch.float64, generator=generator) * 2 - 1
    ).requires_grad_()
    x = torch.rand(6, 3, dtype=torch.float64, generator=generator) * 0.8 + 0.1
    # Trilinear interpolation has kinks on cell faces: keep the points away from them at every level.
    pos = x[:, None, :] * torch.tensor(layout.scale, dtype=torch.float64)[None, :, None] + 0.5
    assert float((pos - pos.round()).abs().min()) > 1e-3
    x.requires_grad_()
    encode = hash_grid_torch if backend == "torch" else hashgrid_cpu.hash_grid_cpu
    assert torch.autograd.gradcheck(lambda a, b: encode(a, b, layout, 2), (x, params))


@pytest.mark.parametrize("backend", CPU_BACKENDS)
def test_hash_collisions_accumulate_gradients(backend):
    """Points whose corners hash to the same entries share them; the table gradient is the sum."""
    config = HashGridConfig(
        n_levels=1, n_features_per_level=1, log2_hashmap_size=4, base_resolution=16, backend=backend
    )
    encoding = HashGridEncoding(config).double()
    assert encoding.layout.hashed == (True,) and encoding.layout.size == (16,)
    x = torch.rand(500, 3, dtype=torch.float64)
    encoding(x).sum().backward()
    # Every point spreads weight 1 over its 8 corners: the 16 shared entries receive 500 in total.
    assert float(encoding.params.grad.sum()) == pytest.approx(500.0)
    assert int((encoding.params.grad > 0).sum()) == 16


def test_backend_switch_and_errors():
    x = torch.rand(5, 3)
    encoding = HashGridEncoding(HashGridConfig(backend="auto"))
    assert encoding.resolve_backend(x) == ("numba" if hashgrid_cpu.available() else "torch")
    assert encoding.half().resolve_backend(x) == "torch"  # the compiled loops take float32/float64 only
    encoding.float()
    if not hashgrid_cpu.available():
        with pytest.raises(EncodingBackendError, match="numba"):
            HashGridEncoding(HashGridConfig(backend="numba"))(x)
    if not tcnn_available():
        with pytest.raises(EncodingBackendError, match="tinycudann"):
            HashGridEncoding(HashGridConfig(backend="tcnn"))(x)
    with pytest.raises(ConfigError, match="^backend='cuda': expected one of"):
        HashGridEncoding(HashGridConfig(backend="cuda"))
    with pytest.raises(ValueError, match="x:"):
        encoding(torch.rand(5, 2))
    assert encoding.output_dim == encoding(x).shape[1] == 16


@needs_numba
@pytest.mark.parametrize("features", [2, 3])  # the loops for two features per level, the general ones
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_numba_matches_torch_twin(dtype, features):
    """The compiled loops against the torch twin on the default grid (hashed and dense levels): outputs,
    table and position gradients; float32 forward values agree bit for bit (the same operations in
    the same order), the gradients to rounding (sums in another order)."""
    layout = level_layout(HashGridConfig())
    generator = torch.Generator().manual_seed(3)
    params = (torch.rand(layout.n_entries * features, generator=generator, dtype=dtype) * 2 - 1) * 0.1
    x = torch.rand(5000, 3, generator=generator, dtype=dtype)
    x[:3] = torch.tensor([[0.0, 0, 0], [1, 1, 1], [-0.25, 1.25, 0.5]], dtype=dtype)  # bounds, clamping
    grad = torch.randn(5000, 8 * features, generator=generator, dtype=dtype)
    results = []
    for encode in (hash_grid_torch, hashgrid_cpu.hash_grid_cpu):
        p, xx = params.clone().requires_grad_(), x.clone().requires_grad_()
        out = encode(xx, p, layout, features)
        out.backward(grad)
        results.append((out.detach(), p.grad, xx.grad))
    (out_t, gp_t, gx_t), (out_n, gp_n, gx_n) = results
    if dtype == torch.float32:
        assert torch.equal(out_t, out_n)
    tolerance = 1e-5 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(out_n, out_t, rtol=tolerance, atol=tolerance)
    torch.testing.assert_close(gp_n, gp_t, rtol=tolerance, atol=tolerance)
    scale = float(gx_t.abs().max())
    torch.testing.assert_close(gx_n / scale, gx_t / scale, rtol=tolerance, atol=tolerance)
    assert not gx_n[2, :2].any() and not gx_t[2, :2].any() and gx_n[2, 2] != 0  # clamped axes: none


def test_chunked_no_grad_equals_direct():
    encoding = HashGridEncoding(HashGridConfig(n_levels=2), seed=1)
    x = torch.rand((1 << 16) + 5, 3)
    with torch.no_grad():
        chunked = encoding(x)
    torch.testing.assert_close(chunked[-10:], encoding(x[-10:]).detach())


def test_import_without_tinycudann():
    code = "import sys; sys.modules['tinycudann'] = None; import geometry.sdf, geometry.encoding as e; "
    code += "assert not e.tcnn_available(); print('ok')"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr


@pytest.mark.cuda
@pytest.mark.skipif(not (torch.cuda.is_available() and tcnn_available()), reason="needs CUDA and tinycudann")
def test_parity_with_tinycudann():
    config = HashGridConfig(n_levels=8, log2_hashmap_size=15, base_resolution=16, per_level_scale=1.6)
    ours = HashGridEncoding(HashGridConfig(**{**config.__dict__, "backend": "torch"}), seed=0).cuda()
    theirs = HashGridEncoding(HashGridConfig(**{**config.__dict__, "backend": "tcnn"})).cuda()
    with torch.no_grad():
        ours.params.uniform_(-1, 1)
        theirs.params.copy_(ours.params)
    x = torch.rand(100_000, 3, device="cuda")
    out_ours, out_theirs = ours(x), theirs(x)
    torch.testing.assert_close(out_theirs, out_ours, atol=1e-4, rtol=1e-4)
    grad = torch.randn_like(out_ours)
    out_ours.backward(grad)
    out_theirs.backward(grad)
    torch.testing.assert_close(theirs.params.grad, ours.params.grad, atol=1e-3, rtol=1e-3)
