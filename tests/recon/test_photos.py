"""A dataset of photos without masks: the ground plane and region found in its sparse points, the
backdrop started from the photos, a stage-1 loss without mask terms, a surface kept inside the region."""

from __future__ import annotations

import pytest
import torch

from data.colmap import write_colmap
from data.dataset import MultiViewDataset, load_scene
from data.images import read_rgba
from recon.asset.backdrop import load_ground, make_backdrop, save_ground
from recon.scenes.synthetic import SyntheticConfig
from recon.train.model import LossConfig, ReconstructionModel
from tests.capture import CaptureConfig, make_capture_scene


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """12 photos (96^2) of the built-in object on a table as a COLMAP folder with the true cameras and
    points on the table and the object (what SfM would give, without running it)."""
    root = tmp_path_factory.mktemp("photos")
    config = CaptureConfig(SyntheticConfig(resolution=96, light_resolution=16, mesh_resolution=48), views=12)
    cameras = make_capture_scene(root / "capture", root / "truth", config)
    images = [read_rgba(path)[..., :3] for path in sorted((root / "capture" / "images").iterdir())]
    generator = torch.Generator().manual_seed(0)
    table = torch.cat((torch.rand(400, 2, generator=generator) * 4 - 2, torch.full((400, 1), -0.42)), 1)
    write_colmap(root / "colmap", cameras, images, table.numpy())
    return root


def test_photos_get_a_ground_plane_and_a_region_above_it(photos):
    dataset = MultiViewDataset(load_scene(photos / "colmap", sfm="off"), "train")
    assert dataset.photos and dataset.ground is not None and dataset.region is not None
    assert float(dataset.ground.normal[2]) > 0.999
    assert "ground plane" in dataset.transform.up_source
    corners = dataset.transform.to_world(dataset.region.corners())
    assert float(corners[:, 2].min()) > -0.42 and float(corners[:, 2].min()) < -0.3  # just above the table
    assert float(corners.norm(dim=-1).max()) < 3  # and around the object, not the whole table
    backdrop = make_backdrop(dataset, texture_resolution=64)
    texture = backdrop.ground.texture.detach()
    assert float(texture.std()) > 0.02  # the photos' table, not a constant


def test_stage1_loss_on_photos_has_no_mask_terms_and_stays_in_the_region(photos):
    dataset = MultiViewDataset(load_scene(photos / "colmap", sfm="off"), "train")
    model = ReconstructionModel(backdrop=make_backdrop(dataset, 32), region=dataset.region)
    assert model.sdf.radius * float(model.sdf.scale) <= 0.8 * float(dataset.region.half.min()) + 1e-6
    result = model.step_loss(dataset.sample(2, torch.Generator().manual_seed(0)), LossConfig(), 0)
    assert "mask" not in result.terms and "free_space" not in result.terms and "image" in result.terms
    result.loss.backward()
    assert model.backdrop.ground.texture.grad is not None and bool(model.backdrop.ground.texture.grad.any())
    with torch.no_grad():  # a network that fills the whole box still yields a surface inside the region
        model.sdf.radius = 5.0
        vertices, _, grid = model.extract()
    slack = float(grid.spacing.max())
    assert float(dataset.region.sdf(vertices).max()) < slack


def test_ground_plane_round_trips_in_world_units(photos, tmp_path):
    dataset = MultiViewDataset(load_scene(photos / "colmap", sfm="off"), "train")
    ground = make_backdrop(dataset, 16).ground
    save_ground(tmp_path / "ground", ground, dataset.transform)
    loaded = load_ground(tmp_path / "ground")
    world = dataset.transform.to_world(ground.origin[None])[0]
    assert torch.allclose(loaded.origin, world, atol=1e-5)
    assert loaded.radius == pytest.approx(ground.radius / dataset.transform.scale, rel=1e-5)
    assert torch.allclose(loaded.texture, ground.texture.detach(), rtol=0.01, atol=1e-3)  # RGBE precision


def test_rays_through_the_region_are_told_apart():
    from data.ground import Region

    region = Region.from_bounds((-1.0, -1.0, 0.0, 1.0, 1.0, 1.0))
    origins = torch.tensor([[0.0, -5.0, 0.5], [0.0, -5.0, 1.5], [0.0, 0.0, 0.5], [0.0, 5.0, 0.5]])
    directions = torch.tensor([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    assert region.crosses(origins, directions).tolist() == [True, False, True, False]  # last: points away
