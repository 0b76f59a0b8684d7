"""Where every reader and writer of equirectangular maps puts one bright texel (docs/design.md,
"Environment maps": Blender's convention for a Z-up world)."""

import math

import numpy as np
import pytest
import torch

from render.envmap import cube_directions, latlong_directions, sample_latlong
from render.hdr import read_hdr, write_hdr
from render.light import EnvironmentLight, EnvironmentLightConfig

HEIGHT, WIDTH = 32, 64
# Directions off the texel borders; _cycles_pixel is Cycles' own formula, written out by hand:
# u = 1/2 - atan2(y, x) / 2 pi, v = acos(z) / pi (v = 0 at the top row as stored).
DIRECTIONS = {
    "+X": (1.0, 0.02, 0.01),
    "+Y": (0.02, 1.0, 0.01),
    "-X": (-1.0, 0.02, 0.01),
    "-Y": (0.02, -1.0, 0.01),
    "up-ish +Y+X": (0.5, 0.7, 0.6),
    "down-ish -Y": (-0.3, -0.6, -0.7),
}


def _cycles_pixel(direction) -> tuple[int, int]:
    x, y, z = np.asarray(direction, np.float64) / np.linalg.norm(direction)
    u = (0.5 - math.atan2(y, x) / (2 * math.pi)) % 1.0
    v = math.acos(z) / math.pi
    return int(v * HEIGHT), int(u * WIDTH)


def test_named_directions_land_on_the_documented_columns():
    assert _cycles_pixel((1, 0.02, 0.01))[1] in (WIDTH // 2 - 1, WIDTH // 2)  # centre column = +X
    assert _cycles_pixel((0.02, 1, 0.01))[1] in (WIDTH // 4 - 1, WIDTH // 4)  # u = 1/4 = +Y
    assert _cycles_pixel((-1, 0.02, 0.01))[1] in (0, WIDTH - 1)  # the edges = -X
    assert _cycles_pixel((0.01, 0.02, 1))[0] == 0  # top row = +Z


def test_latlong_directions_are_cycles_pixel_centres():
    d = latlong_directions(HEIGHT, WIDTH, dtype=torch.float64)
    for i, j in ((0, 0), (5, 17), (HEIGHT // 2, WIDTH // 2), (HEIGHT - 1, WIDTH - 1)):
        assert _cycles_pixel(d[i, j].tolist()) == (i, j)


def _one_texel_map(row: int, column: int) -> np.ndarray:
    image = np.full((HEIGHT, WIDTH, 3), 0.01, np.float32)
    image[row, column] = 100.0
    return image


@pytest.mark.parametrize("name", list(DIRECTIONS))
def test_reading_an_hdr_puts_the_texel_at_its_direction(tmp_path, name):
    direction = DIRECTIONS[name]
    row, column = _cycles_pixel(direction)
    path = tmp_path / "env.hdr"
    write_hdr(path, _one_texel_map(row, column))
    target = torch.tensor(direction, dtype=torch.float32)
    target = target / target.norm()
    # sample_latlong (bilinear lookups) sees the texel in its direction.
    image = torch.from_numpy(read_hdr(path))
    assert sample_latlong(image, latlong_directions(HEIGHT, WIDTH)[row, column][None])[0, 0] > 50
    # EnvironmentLight.from_file (what training and the synthetic scene load): the brightest cube texel.
    light = EnvironmentLight.from_file(path, EnvironmentLightConfig(resolution=16))
    brightest = light.base.sum(-1).reshape(-1).argmax()
    seen = cube_directions(16).reshape(-1, 3)[brightest]
    assert float(seen @ target) > math.cos(math.radians(12))


@pytest.mark.parametrize("name", list(DIRECTIONS))
def test_writing_a_probe_puts_the_texel_where_cycles_reads_it(tmp_path, name):
    direction = DIRECTIONS[name]
    target = torch.tensor(direction) / torch.tensor(direction).norm()
    d = cube_directions(32).reshape(-1, 3)
    spot = torch.exp(((d @ target) - 1) / 0.0005)[:, None].expand(-1, 3) * 10 + 0.01
    light = EnvironmentLight(EnvironmentLightConfig(resolution=32), spot.reshape(6, 32, 32, 3))
    path = tmp_path / "probe.hdr"
    light.save_probe(path, HEIGHT)
    written = read_hdr(path).sum(-1)
    peak = np.unravel_index(np.argmax(written), written.shape)
    row, column = _cycles_pixel(direction)
    assert abs(int(peak[0]) - row) <= 1
    assert min(abs(int(peak[1]) - column), WIDTH - abs(int(peak[1]) - column)) <= 1
    # The TensorBoard light image is the same lat-long map.
    assert np.allclose(light.to_latlong(HEIGHT).sum(-1).numpy(), written, rtol=0.01, atol=1e-3)
