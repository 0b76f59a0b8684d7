"""Checkpoints: atomic writes, round trip, clear errors for missing or corrupt files."""

from __future__ import annotations

import pytest
import torch

from recon.train.checkpoint import CheckpointError, latest_checkpoint, load_checkpoint, save_checkpoint


def test_round_trip_and_latest(tmp_path):
    state = {"step": 7, "model": {"w": torch.arange(4.0)}}
    save_checkpoint(tmp_path / "step_7.pt", state)
    save_checkpoint(tmp_path / "step_12.pt", {**state, "step": 12})
    loaded = load_checkpoint(tmp_path / "step_7.pt", required=("step", "model"))
    assert loaded["step"] == 7 and torch.equal(loaded["model"]["w"], torch.arange(4.0))
    assert latest_checkpoint(tmp_path).name == "step_12.pt"
    assert latest_checkpoint(tmp_path / "none") is None
    assert not list(tmp_path.glob(".*.tmp*"))


def test_failed_write_keeps_the_previous_checkpoint(tmp_path):
    path = tmp_path / "step_1.pt"
    save_checkpoint(path, {"step": 1})

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("cannot pickle")

    with pytest.raises(CheckpointError, match="step_1.pt: cannot write the checkpoint"):
        save_checkpoint(path, {"step": 2, "bad": Unpicklable()})
    assert load_checkpoint(path)["step"] == 1


def test_errors_name_the_file(tmp_path):
    with pytest.raises(CheckpointError, match="missing.pt: checkpoint not found"):
        load_checkpoint(tmp_path / "missing.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"\x00garbage")
    with pytest.raises(CheckpointError, match="corrupt.pt: corrupt checkpoint"):
        load_checkpoint(corrupt)
    save_checkpoint(tmp_path / "partial.pt", {"step": 3})
    with pytest.raises(CheckpointError, match="partial.pt: checkpoint lacks model"):
        load_checkpoint(tmp_path / "partial.pt", required=("step", "model"))
