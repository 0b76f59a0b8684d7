"""Atomic text files: written beside the target, then renamed over it."""

from __future__ import annotations

import os
from pathlib import Path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``.<name>.tmp`` in the same folder, then rename it to ``path``: a crash
    never leaves a half-written file, and the previous one stays until the new one is complete."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path
