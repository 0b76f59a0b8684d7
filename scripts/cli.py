"""What the command lines (train.py and the scripts) share: the errors whose message is for the user
(:class:`data.errors.UserError`, and the file-system errors below), printed as one line on stderr with an
exit code; anything else is a bug and keeps its traceback."""

from __future__ import annotations

import errno
import sys
from collections.abc import Callable

from data.errors import UserError

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
    """``action()``; 0 on success, else the :class:`data.errors.UserError`'s exit code (1; 2 when bpy is
    missing) with its one line; anything else is a bug and keeps its traceback."""
    try:
        action()
    except UserError as error:
        print(f"{name}: {error}", file=sys.stderr)
        return error.exit_code
    except OSError as error:
        if (problem := file_system_problem(error)) is None:
            raise
        print(f"{name}: {problem}", file=sys.stderr)
        return 1
    return 0
