"""Shared pytest fixtures: ``report`` collects measured figures that tests state in the session summary
(also under pytest-xdist: the figures travel with each test's report to the controlling process)."""

from __future__ import annotations

import os

import pytest
import torch

_REPORTED: list[str] = []


def pytest_configure(config):
    if os.environ.get("PYTEST_XDIST_WORKER"):  # pytest -n 2: one thread per worker (and per train.py it
        torch.set_num_threads(1)  # starts), one worker per core
        os.environ["OMP_NUM_THREADS"] = "1"


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same global RNG state: random inputs are reproducible run to run (a
    finite-difference check that lands on a kink once in a thousand runs is a flaky test, not a finding)."""
    torch.manual_seed(0)


@pytest.fixture
def one_thread():
    """One PyTorch thread for the test: multi-threaded CPU reductions reorder float sums, and Adam turns
    those ~1e-9 differences of near-zero hash-grid gradients into lr-sized steps, so training trajectories
    drift apart run to run. With one thread, training is bitwise reproducible."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def report(request):
    """``report("text")`` adds a line to the 'measured' section at the end of the pytest run."""
    return lambda text: request.node.user_properties.append(("measured", str(text)))


def pytest_runtest_logreport(report):
    if report.when == "teardown":
        _REPORTED.extend(text for name, text in report.user_properties if name == "measured")


def pytest_terminal_summary(terminalreporter):
    if _REPORTED:
        terminalreporter.section("measured")
        for line in _REPORTED:
            terminalreporter.write_line(line)
