"""Atomic text files: written beside the target, then renamed over it."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``.<name>.tmp`` in the same folder, then rename it to ``path``: a crash
    never leaves a half-written file, and the previous one stays until the new one is complete."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as error:  # name the file meant, not the temporary one
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if error.errno is None:
            raise
        raise type(error)(error.errno, error.strerror, str(path)) from None
    return path
