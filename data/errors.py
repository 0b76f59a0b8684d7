"""The one exception type of the data package."""

from __future__ import annotations


class DatasetError(ValueError):
    """A dataset that cannot be used. The message is one line naming the file and the problem, meant to be
    printed as is (``train.py`` prints it without a traceback)."""
