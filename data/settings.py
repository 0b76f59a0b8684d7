"""The contract of every settings dataclass (the run's configuration and the library's component configs).

A settings dataclass derives from :class:`Settings` and checks its own fields in :meth:`Settings.check`
with :func:`require`; :meth:`Settings.validate` checks every nested settings dataclass first, then its own
fields, and names a bad value by its key from where ``validate`` was called (``model.light.resolution``
from the run's root, ``resolution`` from the light's own config). One mechanism, one message shape::

    model.light.resolution=96: expected a power of two >= 8 (the cube map's mip chain)

The run validates its whole configuration before anything is written (recon.config); library classes
validate theirs when an object is built from them. It lives at the bottom of the layering so that every
package's settings use it (tests/test_layering.py).
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass

from data.errors import ConfigError


def require(settings: object, name: str, ok: bool, expected: str) -> None:
    """A :class:`ConfigError` for field ``name`` of ``settings`` unless ``ok``: its value and what it
    takes (``expected``, e.g. "an integer >= 1")."""
    if not ok:
        raise ConfigError(name, f"={getattr(settings, name)!r}: expected {expected}")


def power_of_two(value: int, least: int = 1) -> bool:
    """``value`` is a power of two, at least ``least``."""
    return value >= least and not value & (value - 1)


class Settings:
    """Mixin of a settings dataclass: :meth:`check` its own fields, :meth:`validate` the whole tree."""

    def check(self) -> None:
        """This dataclass's own fields (nested settings are checked before); :func:`require` each."""

    def validate(self) -> None:
        """Every nested settings dataclass, then this one's :meth:`check`; the first bad value raises a
        :class:`ConfigError` whose key is dotted from here."""
        for item in fields(self):  # type: ignore[arg-type]
            value = getattr(self, item.name)
            if is_dataclass(value) and isinstance(value, Settings):
                try:
                    value.validate()
                except ConfigError as error:
                    raise error.under(f"{item.name}.") from None
        self.check()
