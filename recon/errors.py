"""The errors a run ends with when the user can fix the cause; ``train.py`` prints them as one line."""

from __future__ import annotations


class TrainingError(RuntimeError):
    """Training cannot continue (e.g. a non-finite loss); the message is one line."""


class ConfigError(ValueError):
    """A configuration value out of its range; the message names the key, the value and what it takes."""


class RunFolderError(ValueError):
    """A run folder that cannot be used as asked: a new run into a folder that holds an earlier run's
    results, a resume where there is no run or with settings or data other than the run's own. The
    message is one line naming the folder and what to do."""


class AssetError(ValueError):
    """An exported asset that cannot be read back (a missing or unreadable file); the message names it."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM. ``str()`` says where the run stopped and what was saved (empty when nothing)."""
