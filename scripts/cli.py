"""What the command-line scripts share: their known failures become one line on stderr and an exit code."""

from __future__ import annotations

import sys
from collections.abc import Callable

from data.errors import DatasetError
from recon.blender import BlenderUnavailable
from recon.checkpoint import CheckpointError
from render.hdr import EnvironmentFileError


def run(name: str, action: Callable[[], None]) -> int:
    """``action()``; 0 on success, 2 when bpy is missing, 1 for bad input (the message names the file)."""
    try:
        action()
    except BlenderUnavailable as error:
        print(f"{name}: {error}", file=sys.stderr)
        return 2
    except (DatasetError, CheckpointError, EnvironmentFileError, ValueError) as error:
        print(f"{name}: {error}", file=sys.stderr)
        return 1
    return 0
