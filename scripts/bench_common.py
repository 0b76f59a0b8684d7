"""Helpers shared by the benchmark scripts: run metadata and atomic JSON output."""

from __future__ import annotations

import contextlib
import json
import platform
import resource
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import torch

from data.files import write_text_atomic


def metadata() -> dict:
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def write_json(path: Path, rows: list[dict]) -> None:
    """Write {"meta": ..., "results": rows} atomically."""
    write_text_atomic(path, json.dumps({"meta": metadata(), "results": rows}, indent=2))
    print(f"wrote {path}")


def devices(requested: list[str] | None) -> list[torch.device]:
    names = requested or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
    return [torch.device(name) for name in names]


@contextlib.contextmanager
def busy_neighbour() -> Iterator[subprocess.Popen]:
    """Within the block one other single-threaded process keeps a core busy (``while True: pass``), as a
    browser tab or a second job would on a user's machine; it is killed on leaving, whatever happens."""
    process = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield process
    finally:
        process.kill()
        process.wait()
