"""recon.resume: a resumed run is given its own configuration, changed only where the command line asks
and that cannot change what the run trained (Hydra's composition in-process, no training)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

from recon.config import register, to_config
from recon.errors import RunFolderError
from recon.resume import resumed_config
from recon.run_folder import add_resume, load_config, write_config
from tests.helpers import ROOT

STARTED_WITH = ("+experiment=concave", "train.steps=50", "model.grid.resolution=32", "stage2.steps=7",
                "train.progress=false", "device=cpu")  # fmt: skip


@pytest.fixture
def hydra_compose():
    register()
    with initialize_config_dir(str(ROOT / "configs"), version_base=None):
        yield lambda *overrides: compose(config_name="config", overrides=list(overrides))


@pytest.fixture
def run_dir(tmp_path, hydra_compose) -> Path:
    """A run started with non-default settings and a preset, stopped in stage 1."""
    write_config(tmp_path, to_config(hydra_compose(*STARTED_WITH)))
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "step_20.pt").write_bytes(b"stage 1")
    return tmp_path


def resume(hydra_compose, run_dir: Path, *overrides: str):
    overrides = ("train.resume=true", *overrides)
    return resumed_config(hydra_compose(*overrides), hydra_compose(), list(overrides), run_dir)


def test_the_runs_own_settings_whatever_the_defaults(hydra_compose, run_dir):
    config, changes = resume(hydra_compose, run_dir)
    assert changes == {}
    assert config.train.steps == 50 and config.model.grid.resolution == 32 and config.stage2.steps == 7
    assert config.dataset.synthetic.object == "concave" and config.train.volume.steps == 3000  # the preset's
    assert config.train.progress is False and config.train.resume is True
    assert config.device == "auto"  # the machine's keys are the resuming command line's (default auto)


def test_more_steps_and_bookkeeping_are_taken(hydra_compose, run_dir):
    config, changes = resume(hydra_compose, run_dir, "train.steps=80", "train.log_every=3", "stage2.steps=9")
    assert changes == {"stage2.steps": (7, 9), "train.log_every": (10, 3), "train.steps": (50, 80)}
    assert (config.train.steps, config.train.log_every, config.stage2.steps) == (80, 3, 9)


def test_the_same_preset_again_changes_nothing(hydra_compose, run_dir):
    _, changes = resume(hydra_compose, run_dir, *STARTED_WITH)
    assert changes == {}


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        (("train.steps=40",), "train.steps=40 (the run's: 50)"),
        (
            ("model.grid.resolution=64", "train.seed=2"),
            "model.grid.resolution=64 (the run's: 32), train.seed=2",
        ),
        (("+experiment=spot_mitsuba",), "dataset.format='nerf_synthetic' (the run's: 'auto')"),
        (("train.losses.eikonal_weight=0.5",), "train.losses.eikonal_weight=0.5"),
    ],
)
def test_what_would_change_the_training_is_refused(hydra_compose, run_dir, overrides, named):
    with pytest.raises(RunFolderError, match="cannot change what this run trained") as error:
        resume(hydra_compose, run_dir, *overrides)
    assert named in str(error.value) and "\n" not in str(error.value)


def test_a_later_phases_settings_until_it_starts(hydra_compose, run_dir):
    _, changes = resume(hydra_compose, run_dir, "stage2.laplacian_weight=3", "export.texture_resolution=512")
    assert set(changes) == {"stage2.laplacian_weight", "export.texture_resolution"}
    (run_dir / "checkpoints" / "textured.pt").write_bytes(b"the stage-2 model")
    with pytest.raises(RunFolderError, match="export.texture_resolution=512"):
        resume(hydra_compose, run_dir, "export.texture_resolution=512")
    resume(hydra_compose, run_dir, "stage2.laplacian_weight=3")
    (run_dir / "checkpoints" / "stage2").mkdir()
    (run_dir / "checkpoints" / "stage2" / "step_5.pt").write_bytes(b"stage 2")
    with pytest.raises(RunFolderError, match="stage2.laplacian_weight=3.0"):
        resume(hydra_compose, run_dir, "stage2.laplacian_weight=3")
    _, changes = resume(hydra_compose, run_dir, "evaluate=false")
    assert changes == {"evaluate": (True, False)}


def test_changes_are_kept_in_the_record(hydra_compose, run_dir):
    _, changes = resume(hydra_compose, run_dir, "train.steps=80")
    add_resume(run_dir, ["train.resume=true", "train.steps=80"], changes, {})
    assert load_config(run_dir).train.steps == 80
    config, changes = resume(hydra_compose, run_dir)  # the next resume continues from 80 steps
    assert config.train.steps == 80 and changes == {}
    assert "steps: 50" in (run_dir / "config.yaml").read_text()  # config.yaml is the start's, untouched


def test_no_run_or_a_contradiction(hydra_compose, run_dir, tmp_path):
    with pytest.raises(RunFolderError, match="no run to resume here"):
        resume(hydra_compose, tmp_path / "empty")
    with pytest.raises(RunFolderError, match="train.resume=true and train.overwrite=true: choose one"):
        resume(hydra_compose, run_dir, "train.overwrite=true")
