"""The training loop both stages share: stage-2 checkpoints and exact resume, checkpoints by wall time,
SIGTERM stopping after a whole step, corrupt checkpoints skipped in favour of the previous good one."""

from __future__ import annotations

import os
import signal

import pytest
import torch

from data.dataset import MultiViewDataset
from geometry import cpu_threads
from geometry.cpu_threads import ThreadPolicy
from recon.errors import Interrupted
from recon.scenes.synthetic import SyntheticConfig, make_synthetic_scene
from recon.train.checkpoint import CheckpointError, save_checkpoint
from recon.train.loop import newest_state, stop_signals
from recon.train.model import LightSettings, ModelConfig, ReconstructionModel
from recon.train.stage2 import Stage2Config, Stage2Model, Stage2Trainer
from recon.train.trainer import TrainConfig, Trainer
from render.light import EnvironmentLightConfig
from tests.helpers import CountingLoad

LIGHT = EnvironmentLightConfig(resolution=16)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    config = SyntheticConfig(
        n_train=4, n_val=0, n_test=0, resolution=32, mesh_resolution=32, light_resolution=16
    )
    synthetic = make_synthetic_scene(tmp_path_factory.mktemp("scene"), config)
    return MultiViewDataset(synthetic.scene, "train", background="random")


@pytest.fixture(scope="module")
def textured(dataset):
    """A stage-2 model made from a briefly trained stage-1 model (xatlas and baking once per module)."""
    torch.manual_seed(0)
    model = ReconstructionModel(ModelConfig(light=LightSettings(LIGHT.resolution)))
    Trainer(model, dataset, settings(steps=3), "/nonexistent").train_step()
    return Stage2Model.from_stage1(model, texture_resolution=32, min_component_fraction=0.05)


def settings(**changes) -> TrainConfig:
    config = TrainConfig(batch_size=2, progress=False, log_every=1, image_every=2, checkpoint_every=2)
    for key, value in changes.items():
        setattr(config, key, value)
    return config


def stage2(textured, dataset, run_dir, steps: int, constant_rates: bool = False, **changes) -> Stage2Trainer:
    model = Stage2Model.from_state(textured.state_dict(), LIGHT)  # a fresh copy of the same start
    config = Stage2Config(steps=steps, batch_size=2)
    if constant_rates:
        config.final_lr_fraction = 1.0
    return Stage2Trainer(model, dataset, config, settings(**changes), run_dir)


def assert_same_state(a: torch.nn.Module, b: torch.nn.Module) -> None:
    for name, value in a.state_dict().items():
        assert torch.equal(b.state_dict()[name], value), name


def test_stage2_model_round_trips_through_its_state(textured):
    copy = Stage2Model.from_state(textured.state_dict(), LIGHT)
    assert_same_state(textured, copy)
    assert copy.material.normal_map is None


def test_stage2_resumes_exactly(textured, dataset, tmp_path, one_thread):
    # A 3-step run continued to 5 steps follows the 5-step run only at constant rates (a decay spans the
    # steps given); a stop within one schedule: test_sigterm_ends_the_step_saves_and_resumes_exactly.
    straight = stage2(textured, dataset, tmp_path / "straight", 5, constant_rates=True)
    straight.fit()
    first = stage2(textured, dataset, tmp_path / "split", 3, constant_rates=True)
    first.fit()  # checkpoints at steps 2 and 3, as if the run had been stopped there
    assert sorted(p.name for p in (tmp_path / "split" / "checkpoints" / "stage2").glob("*.pt")) == [
        "step_2.pt",
        "step_3.pt",
    ]
    resumed = stage2(textured, dataset, tmp_path / "split", 5, constant_rates=True, resume=True)
    resumed.fit()
    assert resumed.step == 5 and resumed.terms == straight.terms
    assert_same_state(straight.model, resumed.model)
    assert_same_state_dicts(straight.optimizer.state_dict(), resumed.optimizer.state_dict())


def assert_same_state_dicts(a: dict, b: dict) -> None:
    for key, (x, y) in enumerate(zip(a["state"].values(), b["state"].values(), strict=True)):
        for name in x:
            assert torch.equal(torch.as_tensor(x[name]), torch.as_tensor(y[name])), (key, name)


def test_checkpoints_by_wall_time_and_pruning(textured, dataset, tmp_path):
    loop = stage2(
        textured, dataset, tmp_path, 5, checkpoint_every=0, checkpoint_minutes=1e-9, keep_checkpoints=2
    )
    loop.fit()  # every step is "minutes" after the last checkpoint
    names = sorted(p.name for p in loop.checkpoint_dir.glob("*.pt"))
    assert names == ["step_4.pt", "step_5.pt"]


class SignalledTrainer(Stage2Trainer):
    """Sends itself SIGTERM during step ``at`` (as ``kill PID`` would)."""

    at = 2

    def compute(self, batch):
        if self.step == self.at:
            os.kill(os.getpid(), signal.SIGTERM)
        return super().compute(batch)


def test_sigterm_ends_the_step_saves_and_resumes_exactly(textured, dataset, tmp_path, one_thread):
    straight = stage2(textured, dataset, tmp_path / "straight", 6)
    straight.fit()
    model = Stage2Model.from_state(textured.state_dict(), LIGHT)
    config = Stage2Config(steps=6, batch_size=2)
    stopped = SignalledTrainer(model, dataset, config, settings(checkpoint_every=0), tmp_path / "stopped")
    with pytest.raises(
        Interrupted, match="stopped by SIGTERM in stage 2 after step 3; checkpoint .*step_3.pt"
    ):
        stopped.fit()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is gone again
    resumed = stage2(textured, dataset, tmp_path / "stopped", 6, resume=True)
    resumed.fit()
    assert_same_state(straight.model, resumed.model)


def test_a_second_signal_stops_at_once_without_a_checkpoint():
    with pytest.raises(Interrupted, match="stopped by SIGINT"), stop_signals(defer=True) as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop["pending"] == "SIGTERM"
        os.kill(os.getpid(), signal.SIGINT)


class SecondSignalTrainer(Stage2Trainer):
    """SIGINT during step ``at``, then SIGTERM before it ends: the second stops at once, mid-step."""

    at = 2

    def compute(self, batch):
        if self.step == self.at:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGTERM)
        return super().compute(batch)


@pytest.mark.parametrize("checkpoint_every", [0, 1])
def test_a_second_signal_names_the_kept_checkpoint(textured, dataset, tmp_path, checkpoint_every):
    """The line after SIGINT then SIGTERM names the checkpoint that exists, or says there is none."""
    model = Stage2Model.from_state(textured.state_dict(), LIGHT)
    config = Stage2Config(steps=6, batch_size=2)
    loop = SecondSignalTrainer(
        model, dataset, config, settings(checkpoint_every=checkpoint_every, checkpoint_minutes=0), tmp_path
    )
    with pytest.raises(Interrupted) as stopped:
        loop.fit()
    kept = f"{loop.checkpoint_dir / 'step_2.pt'} is the newest checkpoint"
    expected = kept if checkpoint_every else "no checkpoint of it was written yet"
    assert str(stopped.value) == f"stopped by SIGTERM in stage 2 during step 3; {expected}"
    assert sorted(p.name for p in tmp_path.rglob("*.pt")) == (
        ["step_1.pt", "step_2.pt"] if checkpoint_every else []
    )


def test_a_corrupt_newest_checkpoint_is_skipped_and_kept(textured, dataset, tmp_path, capsys):
    loop = stage2(textured, dataset, tmp_path, 4)
    loop.fit()
    newest = loop.checkpoint_dir / "step_9.pt"
    newest.write_bytes((loop.checkpoint_dir / "step_4.pt").read_bytes()[:1000])  # truncated
    assert newest_state(loop.checkpoint_dir)["step"] == 4
    warning = capsys.readouterr().err.strip()
    assert warning.startswith("warning: ") and "step_9.pt: corrupt checkpoint" in warning
    assert "resuming from step_4.pt instead" in warning and "\n" not in warning
    assert newest.stat().st_size == 1000
    for path in loop.checkpoint_dir.glob("step_[0-8].pt"):
        path.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="step_9.pt: corrupt checkpoint"):
        newest_state(loop.checkpoint_dir)


def test_stage2_tensorboard_follows_stage1_on_one_time_axis(textured, dataset, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    model = Stage2Model.from_state(textured.state_dict(), LIGHT)
    config = Stage2Config(steps=2, batch_size=2)
    Stage2Trainer(model, dataset, config, settings(), tmp_path, step_offset=100).fit()
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    scalars, images = set(events.Tags()["scalars"]), set(events.Tags()["images"])
    assert {
        "stage2/loss",
        "stage2/image",
        "stage2/mask",
        "stage2/psnr",
        "lr/textures",
        "lr/vertices",
    } <= scalars
    assert [event.step for event in events.Scalars("stage2/loss")] == [101, 102]
    assert {"render/rendered_vs_reference", "material/base_color", "light/environment"} <= images
    assert [event.step for event in events.Images("render/rendered_vs_reference")] == [102]


def test_pruning_never_deletes_the_new_checkpoint_for_a_later_numbered_file(textured, dataset, tmp_path):
    leftover = tmp_path / "checkpoints" / "stage2" / "step_99.pt"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"corrupt leftover")
    loop = stage2(textured, dataset, tmp_path, 3, checkpoint_every=1, keep_checkpoints=1)
    loop.fit()
    assert sorted(p.name for p in loop.checkpoint_dir.glob("*.pt")) == ["step_3.pt", "step_99.pt"]


def test_a_checkpoint_of_another_model_is_named_in_one_line(textured, dataset, tmp_path):
    """A checkpoint whose tensors do not fit this configuration's model (say, another texture size) ends
    with a CheckpointError naming the folder, not a traceback from load_state_dict."""
    stage2(textured, dataset, tmp_path, steps=2).fit()
    path = tmp_path / "checkpoints" / "stage2" / "step_2.pt"
    state = torch.load(path, weights_only=False)
    state["model"]["material.base_color"] = torch.zeros(1, 8, 8, 3)
    save_checkpoint(path, state)
    with pytest.raises(CheckpointError, match=r"another model .*material.base_color is \[1, 8, 8, 3\]"):
        stage2(textured, dataset, tmp_path, steps=4).restore()


def test_a_bug_while_restoring_keeps_its_traceback(textured, dataset, tmp_path, monkeypatch):
    """Only a checkpoint that does not fit is the user's problem; an error inside loading a fitting one
    is a bug, and is not renamed "a checkpoint of another model"."""
    stage2(textured, dataset, tmp_path, steps=2).fit()
    loop = stage2(textured, dataset, tmp_path, steps=4)

    def broken(state):
        raise KeyError("a bug")

    monkeypatch.setattr(loop, "load_state", broken)
    with pytest.raises(KeyError, match="a bug"):
        loop.restore()


def test_both_stages_adapt_the_thread_count(textured, dataset, tmp_path):
    """train.threads=auto: every step of either stage looks at the load first (geometry.cpu_threads)."""
    load = CountingLoad()
    policy = ThreadPolicy(fixed=None, ceiling=2, cores=2, load=load, threads=2)
    with cpu_threads.installed(policy):
        torch.manual_seed(0)
        Trainer(
            ReconstructionModel(ModelConfig(light=LightSettings(LIGHT.resolution))),
            dataset,
            settings(),
            tmp_path,
        ).train_step()
        assert load.looks == 1 and policy.threads == 1 and torch.get_num_threads() == 1
        stage2(textured, dataset, tmp_path / "stage2", 2).train_step()  # its occlusion passes look too
        assert load.looks >= 2


def test_stage2_takes_the_runs_adam_epsilon(textured, dataset, tmp_path):
    """train.optimizer.eps is the run's Adam epsilon in stage 2 too (it was hard-coded to 1e-15)."""
    run = settings()
    run.optimizer.eps = 1e-8
    model = Stage2Model.from_state(textured.state_dict(), LIGHT)
    trainer = Stage2Trainer(model, dataset, Stage2Config(steps=1, batch_size=2), run, tmp_path)
    assert {group["eps"] for group in trainer.optimizer.param_groups} == {1e-8}


def test_the_exported_occlusion_uses_stage2s_direction_count(textured, dataset, tmp_path, monkeypatch):
    """stage2.occlusion_directions also sets the exported asset's occlusion (it was a hard-coded 128)."""
    from recon.run import export_model

    model = Stage2Model.from_state(textured.state_dict(), LIGHT)
    model.update_occlusion(8)  # shading with occlusion: the export bakes it into ORM's R
    counts = []
    original = Stage2Model.update_occlusion

    def recording(self, directions: int = 128) -> None:
        counts.append(directions)
        original(self, directions)

    monkeypatch.setattr(Stage2Model, "update_occlusion", recording)
    export_model(model, dataset, tmp_path / "mesh", occlusion_directions=16)
    assert counts == [16] and (tmp_path / "mesh" / "mesh.glb").is_file()
