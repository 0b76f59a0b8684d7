"""Trainer: checkpoints, exact resume, TensorBoard tags, the NaN guard."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from data.dataset import MultiViewDataset
from data.errors import ConfigError
from recon.config import Config
from recon.scenes.synthetic import SyntheticConfig, make_synthetic_scene
from recon.train.model import GridSettings, ModelConfig, ReconstructionModel
from recon.train.trainer import TrainConfig, Trainer, TrainingError


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    config = SyntheticConfig(
        n_train=6, n_val=1, n_test=1, resolution=48, mesh_resolution=48, light_resolution=16
    )
    synthetic = make_synthetic_scene(tmp_path_factory.mktemp("scene"), config)
    return MultiViewDataset(synthetic.scene, "train", background="random")


def train(dataset, run_dir, steps: int, resume: bool = False, **changes) -> Trainer:
    torch.manual_seed(0)
    config = TrainConfig(
        steps=steps, batch_size=2, log_every=1, image_every=2, checkpoint_every=3, resume=resume
    )
    for key, value in changes.items():
        setattr(config, key, value)
    trainer = Trainer(ReconstructionModel(), dataset, config, run_dir)
    trainer.fit()
    return trainer


def test_resume_continues_exactly(dataset, tmp_path, one_thread):
    straight = train(dataset, tmp_path / "straight", 6)
    torch.manual_seed(0)
    config = TrainConfig(steps=6, batch_size=2, log_every=1, image_every=2, checkpoint_every=3)
    interrupted = Trainer(ReconstructionModel(), dataset, config, tmp_path / "split")
    for _ in range(3):  # as if stopped after the step-3 checkpoint
        interrupted.train_step()
    interrupted.save()
    resumed = train(dataset, tmp_path / "split", 6, resume=True)
    assert resumed.step == 6
    for name, value in straight.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[name], value), name
    assert sorted(p.name for p in (tmp_path / "split" / "checkpoints").glob("*.pt")) == [
        "step_3.pt",
        "step_6.pt",
    ]


def test_tensorboard_tags(dataset, tmp_path):
    train(dataset, tmp_path, 2)
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    scalars, images = set(events.Tags()["scalars"]), set(events.Tags()["images"])
    for tag in (
        "loss/image",
        "loss/mask",
        "loss/eikonal",
        "loss/loss",
        "train/psnr",
        "train/triangles",
        "lr/light",
    ):
        assert tag in scalars, tag
    assert {"render/rendered_vs_reference", "render/normals", "light/environment"} <= images
    assert {"material/base_color", "material/roughness", "material/metallic"} <= images


def test_non_finite_loss_stops_and_keeps_checkpoints(dataset, tmp_path):
    trainer = train(dataset, tmp_path, 3)
    with torch.no_grad():
        trainer.model.material.mlp[0].weight.fill_(float("nan"))
    trainer.config.steps = 6
    with pytest.raises(TrainingError, match="step 3: parameter material.mlp.0.weight is not finite"):
        trainer.fit()
    assert (tmp_path / "checkpoints" / "step_3.pt").is_file()


def test_coarse_to_fine_leaves_inactive_levels_untouched(dataset, tmp_path):
    torch.manual_seed(0)
    initial = ReconstructionModel().sdf.encoding.params.detach().clone()
    trainer = train(dataset, tmp_path, 6, start_levels=2, steps_per_level=2)
    assert trainer.model.sdf.active_levels == 4  # levels 2 + step 5 // 2 at the last step
    layout = trainer.model.sdf.encoding.layout
    features = trainer.model.sdf.config.encoding.n_features_per_level
    start = layout.offset[4] * features
    params = trainer.model.sdf.encoding.params.detach()
    assert torch.equal(params[start:], initial[start:])
    assert not torch.equal(params[:start], initial[:start])
    finished = train(dataset, tmp_path, 6, resume=True, start_levels=2, steps_per_level=2)
    assert finished.step == 6 and finished.model.sdf.active_levels == 4  # as trained, not step 6's 5


def test_fine_grid_from_its_start_step_and_after_a_resume(dataset, tmp_path):
    seen = []

    class Recording(Trainer):
        def compute(self, batch):
            loss, terms = super().compute(batch)
            seen.append((self.step, self.model.grid.resolution, terms["triangles"]))
            return loss, terms

    def trainer(resume: bool) -> Trainer:
        config = TrainConfig(
            steps=4, batch_size=2, image_every=0, checkpoint_every=0, progress=False, resume=resume,
            fine_grid_resolution=64, fine_grid_start=2,
        )  # fmt: skip
        model = ReconstructionModel(ModelConfig(grid=GridSettings(32)))
        return Recording(model, dataset, config, tmp_path)

    torch.manual_seed(0)
    first = trainer(False)
    for _ in range(3):  # steps 0, 1 on the base grid, 2 on the fine one; then stopped
        first.train_step()
    first.save()
    assert [(step, resolution) for step, resolution, _ in seen] == [(0, 32), (1, 32), (2, 64)]
    assert seen[2][2] > 3 * seen[1][2]  # about 4x the triangles
    assert first.model.config.grid.resolution == 32  # the schedule leaves the configuration alone
    resumed = trainer(True)
    assert resumed.restore() and resumed.step == 3
    assert resumed.model.grid.resolution == 64  # the last trained step's grid (stage 2 and exports use it)
    resumed.fit()
    assert seen[-1][:2] == (3, 64)
    with pytest.raises(ConfigError, match="fine_grid_resolution"):
        Trainer(ReconstructionModel(), dataset, TrainConfig(fine_grid_resolution=96), tmp_path / "bad")


def test_crop_trains_on_windows_of_the_views(dataset, tmp_path):
    seen = []

    class Recording(Trainer):
        def compute(self, batch):
            seen.append((tuple(batch.images.shape), float(batch.cameras.cx[0])))
            return super().compute(batch)

    config = TrainConfig(steps=3, batch_size=2, crop=24, image_every=0, checkpoint_every=0, progress=False)
    trainer = Recording(ReconstructionModel(), dataset, config, tmp_path)
    trainer.fit()
    assert [shape for shape, _ in seen] == [(2, 24, 24, 3)] * 3
    assert len({cx for _, cx in seen}) > 1  # a new window every step
    assert trainer.step == 3 and torch.isfinite(torch.tensor(trainer.terms["loss"]))


def test_a_fine_grid_the_narrow_band_cannot_reach_is_a_config_error():
    config = OmegaConf.to_object(OmegaConf.structured(Config))
    config.train.fine_grid_resolution = 256
    config.validate()  # 256 / model.grid.coarse_resolution 16 = 2^4
    config.train.fine_grid_resolution = 96
    with pytest.raises(
        ConfigError, match=r"^train.fine_grid_resolution=96: expected 16 times a power of two"
    ):
        config.validate()
    config.train.fine_grid_resolution = -1
    with pytest.raises(ConfigError, match=r"^train.fine_grid_resolution=-1: expected an integer >= 0"):
        config.validate()


def test_threads_is_auto_or_a_count():
    config = OmegaConf.to_object(OmegaConf.structured(Config))
    assert config.train.threads == "auto"
    for good in ("auto", "1", "12"):
        config.train.threads = good
        config.validate()
    for bad in ("0", "two", "-2"):
        config.train.threads = bad
        expected = rf"^train.threads='{bad}': expected auto or a thread count >= 1"
        with pytest.raises(ConfigError, match=expected):
            config.validate()
