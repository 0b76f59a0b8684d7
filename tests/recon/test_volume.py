"""The volumetric warm-up (recon.train.volume): it fits the object's SDF from masks and colours, and it
resumes exactly from its checkpoints."""

from __future__ import annotations

import pytest
import torch

from data.dataset import MultiViewDataset
from geometry.distance import mesh_chamfer_distance
from geometry.obj import read_obj
from recon.run_dir import RunDir
from recon.scenes.synthetic import SyntheticConfig, make_synthetic_scene
from recon.train.material import MaterialConfig
from recon.train.model import LightSettings, ModelConfig, ReconstructionModel
from recon.train.trainer import TrainConfig
from recon.train.volume import RadianceField, VolumeConfig, VolumeWarmup
from render.light import EnvironmentLightConfig

LIGHT = EnvironmentLightConfig(resolution=16)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    config = SyntheticConfig(
        n_train=8, n_val=0, n_test=0, resolution=48, mesh_resolution=48, light_resolution=16
    )
    folder = tmp_path_factory.mktemp("scene")
    synthetic = make_synthetic_scene(folder, config)
    return MultiViewDataset(synthetic.scene, "train", background="random"), folder


def settings() -> TrainConfig:
    return TrainConfig(batch_size=2, progress=False, log_every=1, image_every=2, checkpoint_every=2)


def model() -> ReconstructionModel:
    return ReconstructionModel(ModelConfig(light=LightSettings(LIGHT.resolution)), seed=0)


def test_the_warm_up_fits_the_object(scene, tmp_path, one_thread):
    """From the initial sphere, 150 warm-up steps bring the SDF's surface to the object: its Chamfer
    distance to the true mesh (in the dataset's normalized frame) falls to under a third."""
    dataset, folder = scene
    truth = read_obj(folder / "gt_mesh.obj")
    reference = (
        truth.vertices.float() - torch.as_tensor(dataset.transform.offset, dtype=torch.float32)
    ) * dataset.transform.scale
    reconstruction = model()
    vertices, faces, _ = reconstruction.extract()
    before = float(mesh_chamfer_distance(vertices.detach(), faces, reference, truth.faces, 4000))
    config = VolumeConfig(steps=150, rays_per_view=128, samples=48)
    VolumeWarmup(reconstruction, dataset, config, settings(), tmp_path).fit()
    vertices, faces, _ = reconstruction.extract()
    after = float(mesh_chamfer_distance(vertices.detach(), faces, reference, truth.faces, 4000))
    assert after < 0.35 * before, (before, after)


def test_the_warm_up_resumes_exactly(scene, tmp_path, one_thread):
    dataset, _ = scene
    config = VolumeConfig(steps=4, rays_per_view=16, samples=8)
    straight = model()
    VolumeWarmup(straight, dataset, config, settings(), tmp_path / "a").fit()

    resumed = model()
    first = VolumeWarmup(
        resumed, dataset, VolumeConfig(**{**config.__dict__, "steps": 2}), settings(), tmp_path / "b"
    )
    first.fit()
    assert (RunDir(tmp_path / "b").volume_checkpoints / "step_2.pt").is_file()
    resumed = model()  # a new process: the model from scratch, the warm-up from its checkpoint
    second = VolumeWarmup(resumed, dataset, config, settings(), tmp_path / "b")
    assert second.restore() and second.step == 2
    second.fit(resume=False)
    for name, value in straight.sdf.state_dict().items():
        assert torch.equal(resumed.sdf.state_dict()[name], value), name


@pytest.mark.parametrize("degree", [0, 1])
def test_the_colour_field_varies_with_the_view_only_to_its_degree(degree):
    """Fitted to a colour that changes linearly with the view direction (a specular tint), the degree-1
    field matches it; the degree-0 field gives every direction the same colour, so it is left with the
    target's spread (each point is seen from 8 directions)."""
    torch.manual_seed(0)
    field = RadianceField(MaterialConfig(), (-1.0, -1.0, -1.0), (1.0, 1.0, 1.0), degree, seed=0)
    points = (torch.rand(8, 1, 1, 3) * 2 - 1).expand(8, 8, 1, 3).reshape(64, 1, 3)  # each from 8 views
    directions = torch.nn.functional.normalize(torch.randn(64, 3), dim=-1)
    target = torch.sigmoid(0.3 + 1.5 * directions[:, :1]).expand(64, 3)[:, None]
    optimizer = torch.optim.Adam(field.parameters(), lr=1e-2)
    for _ in range(300):
        optimizer.zero_grad()
        error = (field(points, directions) - target).abs().mean()
        error.backward()
        optimizer.step()
    with torch.no_grad():
        turned = field(points, -directions)
        if degree == 0:
            assert torch.allclose(turned, field(points, directions))
            assert float(error) > 0.1, float(error)
        else:
            assert float(error) < 0.02, float(error)
