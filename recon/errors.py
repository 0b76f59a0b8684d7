"""The errors a run ends with when the user can fix the cause (all :class:`data.errors.UserError`, printed
as one line by ``train.py`` and the scripts), and the interruption."""

from __future__ import annotations

from data.errors import UserError


class TrainingError(UserError):
    """Training cannot continue (e.g. a non-finite loss); the message is one line."""


class RunFolderError(UserError):
    """A run folder that cannot be used as asked: a new run into a folder that holds an earlier run's
    results, a resume where there is no run or with settings or data other than the run's own, an output
    folder that cannot be written. The message is one line naming the folder and what to do."""


class AssetError(UserError):
    """An exported asset that cannot be read back (a missing or unreadable file); the message names it."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM. ``str()`` says where the run stopped and what was saved (empty when nothing)."""
