"""Checkpoints: written atomically (temporary file + rename), read back with one-line errors."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from data.errors import UserError
from data.files import atomic_path


class CheckpointError(UserError):
    """A checkpoint that cannot be resumed from; the message names the file and the problem."""


def save_checkpoint(path: str | os.PathLike, state: dict) -> None:
    """``torch.save`` atomically (data.files): a crash never leaves a half-written checkpoint in place of
    the previous one."""
    path = Path(path)
    try:
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            torch.save(state, handle)
    except (OSError, RuntimeError) as error:  # a read-only folder, a full disk (torch wraps the OSError)
        reason = getattr(error, "strerror", None) or str(error).strip().splitlines()[-1]
        raise CheckpointError(
            f"{path}: cannot write the checkpoint ({reason}); the earlier ones are kept: free disk space or "
            "make the folder writable, then resume"
        ) from None


def load_checkpoint(path: str | os.PathLike, required: tuple[str, ...] = ()) -> dict:
    """Load a checkpoint saved by :func:`save_checkpoint`, checking that ``required`` keys exist."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # noqa: BLE001 - any unpickling failure means a corrupt file
        raise CheckpointError(f"{path}: corrupt checkpoint ({type(error).__name__})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not a checkpoint (expected a dictionary)")
    missing = [key for key in required if key not in state]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {', '.join(missing)}")
    return state


def checkpoints_newest_first(folder: str | os.PathLike) -> list[Path]:
    """The ``step_<n>.pt`` files in ``folder``, highest step first (temporary files excluded)."""
    numbered = [(p, p.stem.split("_", 1)[1]) for p in Path(folder).glob("step_*.pt")]
    return [p for p, n in sorted(((p, int(n)) for p, n in numbered if n.isdigit()), key=lambda x: -x[1])]


def latest_checkpoint(folder: str | os.PathLike) -> Path | None:
    """The newest ``step_*.pt`` in ``folder`` (by step number), or None."""
    candidates = checkpoints_newest_first(folder)
    return candidates[0] if candidates else None
