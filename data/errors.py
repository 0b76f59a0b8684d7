"""The errors whose message is for the user, for every package, and the data package's one-line warnings.

:class:`UserError` is the base of every error a user can fix: bad input (a dataset, a mesh, an environment
map), a bad setting, a run folder used wrongly, a missing optional package. Its message is one line naming
the file, key or folder and what to do; ``train.py`` and the scripts print it without a traceback and exit
with its ``exit_code``. Any other exception is a bug and keeps its traceback. It lives here, in the package
at the bottom of the layering, so that every package can derive from it (tests/test_layering.py).
"""

from __future__ import annotations

import sys


class UserError(Exception):
    """An error the user can fix; the message is one line, meant to be printed as is."""

    exit_code = 1


class DatasetError(UserError):
    """A dataset that cannot be used. The message names the file and the problem."""


class ConfigError(UserError):
    """A setting out of its range, or a key the configuration does not have: the message names the key
    (dotted, from the configuration's root), the value and what it takes."""

    def __init__(self, key: str, problem: str | None = None):
        if problem is None:  # a whole message, e.g. a preset's own (``${required:...}``)
            super().__init__(key)
        else:
            super().__init__(f"{key}{problem}" if problem.startswith(("=", ":")) else f"{key}: {problem}")
        self.key, self.problem = key, problem

    def under(self, prefix: str) -> ConfigError:
        """The same error with the key seen from a configuration ``prefix`` levels up (``model.light.``)."""
        return self if self.problem is None else ConfigError(f"{prefix}{self.key}", self.problem)


def warn(message: str) -> None:
    """A one-line warning on stderr (``warning: <file>: <problem>``): the run goes on, and says why it
    may not give what the user expects."""
    print(f"warning: {message}", file=sys.stderr, flush=True)
