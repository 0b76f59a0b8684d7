"""Shared pytest fixtures: ``report`` collects measured figures that tests state in the session summary."""

from __future__ import annotations

import pytest

_REPORTED: list[str] = []


@pytest.fixture
def report():
    """``report("text")`` adds a line to the 'measured' section at the end of the pytest run."""
    return _REPORTED.append


def pytest_terminal_summary(terminalreporter):
    if _REPORTED:
        terminalreporter.section("measured")
        for line in _REPORTED:
            terminalreporter.write_line(line)
