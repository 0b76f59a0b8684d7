"""Atomic writes, the one way every package writes a file or a folder: written beside the target under a
temporary name (``.<name>.tmp<suffix>``, the target's suffix kept for writers that pick the format from
it), then renamed over it. A crash never leaves a half-written file, and the previous one stays until the
new one is complete."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp{path.suffix}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` (its folder made when missing) for the block to write; renamed to
    ``path`` when the block ends, removed when it raises. An OSError names ``path``, not the temporary."""
    path = Path(path)
    tmp = _temporary(path)
    try:
        if not path.parent.exists():
            path.parent.mkdir(parents=True)
        yield tmp
        os.replace(tmp, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if isinstance(error, OSError) and error.errno is not None and error.filename != str(path):
            raise type(error)(error.errno, error.strerror, str(path)) from None
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


@contextlib.contextmanager
def atomic_folder(folder: str | os.PathLike) -> Iterator[Path]:
    """A fresh temporary folder beside ``folder`` for the block to fill; it replaces ``folder`` (an earlier
    one is moved aside first, then deleted) when the block ends, and is deleted when it raises."""
    folder = Path(folder)
    tmp, old = _temporary(folder), folder.with_name(f".{folder.name}.old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        os.replace(folder, old)
    os.replace(tmp, folder)
    shutil.rmtree(old, ignore_errors=True)
