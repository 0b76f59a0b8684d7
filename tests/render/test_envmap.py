import math

import numpy as np
import pytest
import torch

from render.envmap import (
    cube_directions,
    cube_solid_angles,
    cube_to_latlong,
    latlong_directions,
    latlong_to_cube,
)
from render.hdr import EnvironmentFileError, decode_rgbe, encode_rgbe, load_environment, read_hdr, write_hdr
from render.light import EnvironmentLight, EnvironmentLightConfig
from tests.helpers import SHARED

SHARED_ENV = SHARED / "spot_mitsuba" / "env.hdr"


def _smooth(d: torch.Tensor) -> torch.Tensor:
    x, y, z = d.unbind(-1)
    return torch.stack((1.2 + 0.5 * z + 0.2 * x * y, 0.8 + 0.3 * x, 0.6 + 0.2 * y - 0.1 * z * z), -1)


def test_solid_angles_cover_the_sphere():
    for size in (1, 4, 32):
        assert cube_solid_angles(size, dtype=torch.float64).sum().item() == pytest.approx(4 * math.pi)


def test_latlong_cube_round_trip():
    latlong = _smooth(latlong_directions(64, dtype=torch.float64))
    cube = latlong_to_cube(latlong, 32)
    assert torch.allclose(cube, _smooth(cube_directions(32, dtype=torch.float64)), rtol=0.01)
    back = cube_to_latlong(cube, 64)
    assert ((back - latlong).abs() / latlong).max().item() < 0.01


def test_probe_written_and_read_back_equals_the_light(tmp_path):
    light = EnvironmentLight(EnvironmentLightConfig(resolution=32), _smooth(cube_directions(32)) * 3)
    path = tmp_path / "probe.hdr"
    light.save_probe(path)
    image = read_hdr(path)
    expected = light.to_latlong().numpy()
    assert image.shape == (64, 128, 3)
    assert np.abs(image - expected).max() / expected.max() < 1 / 128  # RGBE: 8-bit shared-exponent mantissa
    reloaded = EnvironmentLight.from_file(path, EnvironmentLightConfig(resolution=32))
    assert torch.allclose(reloaded.base, light.base, rtol=0.02)
    assert not list(tmp_path.glob(".*tmp"))  # atomic write leaves no temp file


def test_rgbe_codec_precision_and_edge_values():
    rng = np.random.default_rng(0)
    image = np.exp(rng.normal(0, 3, (7, 9, 3))).astype(np.float32)
    image[0, 0] = 0
    image[0, 1] = [np.nan, -1, np.inf]
    decoded = decode_rgbe(encode_rgbe(image))
    peak = image.max(-1, keepdims=True)
    finite = np.isfinite(image).all(-1)
    assert (np.abs(decoded - image)[finite] <= peak[finite] / 256 + 1e-30).all()
    assert (decoded[0, :2] == 0).all()


def test_hdr_reads_flat_scanlines(tmp_path):
    image = np.linspace(0.01, 4, 4 * 5 * 3, dtype=np.float32).reshape(4, 5, 3)  # width < 8: flat
    write_hdr(tmp_path / "a.hdr", image)
    error = np.abs(read_hdr(tmp_path / "a.hdr") - image)
    assert (error <= image.max(-1, keepdims=True) / 256).all()


@pytest.mark.skipif(not SHARED_ENV.is_file(), reason="shared data not present")
def test_reads_a_third_party_hdr():
    image = load_environment(SHARED_ENV)
    reference = np.load(SHARED_ENV.with_suffix(".npy"))
    assert image.shape == reference.shape
    assert np.abs(image - reference).max() <= reference.max() / 128


def test_bad_environment_files(tmp_path):
    with pytest.raises(EnvironmentFileError, match="missing.hdr: environment map not found"):
        load_environment(tmp_path / "missing.hdr")
    (tmp_path / "text.hdr").write_text("hello")
    with pytest.raises(EnvironmentFileError, match="text.hdr: not a Radiance .hdr file"):
        load_environment(tmp_path / "text.hdr")
    write_hdr(tmp_path / "cut.hdr", np.ones((16, 32, 3), np.float32))
    data = (tmp_path / "cut.hdr").read_bytes()
    (tmp_path / "cut.hdr").write_bytes(data[: len(data) // 2])
    with pytest.raises(EnvironmentFileError, match="cut.hdr: truncated or corrupt"):
        load_environment(tmp_path / "cut.hdr")
    write_hdr(tmp_path / "square.hdr", np.ones((16, 16, 3), np.float32))
    with pytest.raises(EnvironmentFileError, match="square.hdr: an equirectangular map must be twice"):
        load_environment(tmp_path / "square.hdr")
    np.save(tmp_path / "nan.npy", np.full((4, 8, 3), np.nan, np.float32))
    with pytest.raises(EnvironmentFileError, match="nan.npy: contains non-finite values"):
        load_environment(tmp_path / "nan.npy")
    (tmp_path / "x.png").write_bytes(b"")
    with pytest.raises(EnvironmentFileError, match="unsupported environment format"):
        load_environment(tmp_path / "x.png")
