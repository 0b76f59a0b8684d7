"""recon.progress: each phase's digest covers the settings it and the earlier phases depend on, so a
resume redoes exactly the phases whose settings changed, after deleting what they wrote before."""

from __future__ import annotations

from dataclasses import replace

import pytest

from recon.config import Config
from recon.progress import PHASES, RunProgress, phase_digests


def changed_phases(change) -> list[str]:
    base = Config()
    other = Config()
    change(other)
    before, after = phase_digests(base), phase_digests(other)
    return [phase for phase in PHASES if before[phase] != after[phase]]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda c: setattr(c, "evaluate", False), ["metrics"]),
        (lambda c: setattr(c.stage2, "steps", 9), ["stage2", "mesh", "metrics"]),
        (lambda c: setattr(c.stage2, "normal_map", True), list(PHASES[1:])),
        (lambda c: setattr(c.export, "texture_resolution", 512), list(PHASES[1:])),
        (lambda c: setattr(c.train, "steps", 9), list(PHASES)),
        (lambda c: setattr(c.model, "grid", replace(c.model.grid, resolution=32)), list(PHASES)),
        (lambda c: setattr(c.train, "log_every", 3), []),
        (lambda c: setattr(c, "device", "cpu"), []),
        (lambda c: setattr(c.dataset, "path", "/moved/data"), []),  # its content is the fingerprint's job
    ],
)
def test_a_setting_changes_the_digests_of_its_phase_and_later_ones(change, expected):
    assert changed_phases(change) == expected


def test_unfinished_phases_lose_what_they_wrote(tmp_path):
    config = Config()
    progress = RunProgress(tmp_path, config, resume=False)
    for phase in PHASES:
        progress.mark(phase)
    for name in ("mesh/mesh.obj", "stage1_mesh/mesh.obj", "eval/view_000.png", "checkpoints/textured.pt",
                 "checkpoints/stage2/step_5.pt", "checkpoints/step_9.pt"):  # fmt: skip
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    (tmp_path / "metrics.json").write_text("{}")
    assert RunProgress(tmp_path, config, resume=True).discard_unfinished() == []
    more = Config()
    more.stage2.steps += 100
    resumed = RunProgress(tmp_path, more, resume=True)
    assert [phase for phase in PHASES if resumed.finished(phase)] == ["stage1", "textured", "stage1_mesh"]
    assert resumed.discard_unfinished() == ["mesh", "metrics.json", "eval"]
    assert (tmp_path / "stage1_mesh" / "mesh.obj").is_file() and (
        tmp_path / "checkpoints" / "stage2"
    ).is_dir()
    assert RunProgress(tmp_path, more, resume=False).discard_unfinished() == [
        "checkpoints/textured.pt", "checkpoints/stage2", "stage1_mesh",
    ]  # fmt: skip
    assert (tmp_path / "checkpoints" / "step_9.pt").is_file()  # stage 1 continues from its checkpoints
