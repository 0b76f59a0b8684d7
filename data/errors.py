"""The data package's messages: its one exception type, and its one-line warnings."""

from __future__ import annotations

import sys


class DatasetError(ValueError):
    """A dataset that cannot be used. The message is one line naming the file and the problem, meant to be
    printed as is (``train.py`` prints it without a traceback)."""


def warn(message: str) -> None:
    """A one-line warning on stderr (``warning: <file>: <problem>``): the run goes on, and says why it
    may not give what the user expects."""
    print(f"warning: {message}", file=sys.stderr, flush=True)
