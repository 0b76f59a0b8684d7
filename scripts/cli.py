"""What the command lines (train.py and the scripts) share: the errors whose message is for the user,
printed as one line on stderr with an exit code; anything else is a bug and keeps its traceback."""

from __future__ import annotations

import errno
import sys
from collections.abc import Callable

from data.errors import DatasetError
from geometry.encoding import EncodingBackendError
from geometry.obj import MeshFileError
from recon.distributed import DistributedError
from recon.errors import AssetError, ConfigError, RunFolderError, TrainingError
from recon.evaluation.blender import BlenderUnavailable
from recon.train.checkpoint import CheckpointError
from render.hdr import EnvironmentFileError
from render.raster.nvdiffrast_backend import BackendUnavailableError

USER_ERRORS = (
    DatasetError, CheckpointError, TrainingError, ConfigError, RunFolderError, AssetError, DistributedError,
    MeshFileError, EnvironmentFileError, BackendUnavailableError, EncodingBackendError,
)  # fmt: skip
"""Bad input, bad values, a run folder used wrongly, training that cannot go on: one line each, naming
the file or key and what to do."""

FILE_SYSTEM_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR,
                      errno.EEXIST, errno.EISDIR}  # fmt: skip
"""OSErrors that the machine or the paths given cause, not the code: a folder made read-only, a full disk,
a file where a folder should be (or the other way round)."""


def file_system_problem(error: BaseException) -> str | None:
    """One line for an OSError of :data:`FILE_SYSTEM_ERRNOS` (the file and the reason), else None."""
    if isinstance(error, OSError) and error.errno in FILE_SYSTEM_ERRNOS:
        where = error.filename or "a file"
        return f"{where}: {error.strerror} (check the folder's permissions and the free disk space)"
    return None


def run(name: str, action: Callable[[], None]) -> int:
    """``action()``; 0 on success, 2 when bpy is missing, 1 for bad input (the message names the file)."""
    try:
        action()
    except BlenderUnavailable as error:
        print(f"{name}: {error}", file=sys.stderr)
        return 2
    except (*USER_ERRORS, ValueError) as error:
        print(f"{name}: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        if (problem := file_system_problem(error)) is None:
            raise
        print(f"{name}: {problem}", file=sys.stderr)
        return 1
    return 0
