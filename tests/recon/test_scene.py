"""recon.scenes.scene.build_scene: the dataset settings reach the loader as given (the mask command; the
caller's SfM mode over the run's, so an evaluation never redoes SfM a ``dataset.sfm=force`` run did)."""

from __future__ import annotations

import pytest

from data.errors import ConfigError
from recon.scenes import scene as scene_module
from recon.scenes.scene import DatasetConfig, build_scene


@pytest.fixture
def calls(monkeypatch):
    seen = []

    def load_scene(path, format, test_every, sfm, progress=True, mask_command="", video_frames=60):  # noqa: A002
        seen.append({"path": path, "sfm": sfm, "mask_command": mask_command})
        return "scene"

    monkeypatch.setattr(scene_module, "load_scene", load_scene)
    return seen


def test_the_callers_sfm_mode_wins_over_the_runs(calls, tmp_path):
    data = DatasetConfig(path=str(tmp_path), sfm="force")
    assert build_scene(data, tmp_path / "run", sfm="off") == "scene"
    build_scene(data, tmp_path / "run")
    assert [call["sfm"] for call in calls] == ["off", "force"]


def test_the_mask_command_reaches_the_loader(calls, tmp_path):
    command = "rembg i {image} {mask}"
    build_scene(DatasetConfig(path=str(tmp_path), mask_command=command), tmp_path / "run")
    assert calls[0]["mask_command"] == command


def test_dataset_settings_check_themselves():
    with pytest.raises(ConfigError, match=r"^sfm='sometimes': expected one of auto, force, off"):
        DatasetConfig(sfm="sometimes").validate()
    with pytest.raises(ConfigError, match=r"^synthetic.n_train=1: expected an integer >= 2"):
        DatasetConfig(synthetic=scene_module.SyntheticConfig(n_train=1)).validate()
