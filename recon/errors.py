"""The errors a run ends with when the user can fix the cause; ``train.py`` prints them as one line."""

from __future__ import annotations


class TrainingError(RuntimeError):
    """Training cannot continue (e.g. a non-finite loss); the message is one line."""


class ConfigError(ValueError):
    """A configuration value out of its range; the message names the key, the value and what it takes."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM. ``str()`` says where the run stopped and what was saved (empty when nothing)."""
