"""Atomic text writes."""

from __future__ import annotations

import os

import pytest

from data.files import write_text_atomic


def test_replaces_whole_files_and_keeps_the_old_one_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    assert write_text_atomic(path, "first") == path and path.read_text() == "first"
    write_text_atomic(path, "second")
    assert path.read_text() == "second" and sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]

    def fail(*_):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        write_text_atomic(path, "third")
    assert path.read_text() == "second"
