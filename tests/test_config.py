"""The configuration contract: every key that ``--help`` shows is a key of the typed configuration and
does something, the dataclasses' defaults are the run's defaults, and every bad value of every key ends
with one line (a ConfigError) naming that key, from one mechanism (data.settings)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace

import pytest
from omegaconf import OmegaConf

from data.errors import ConfigError
from recon.config import Config, leaf_values
from tests.helpers import ROOT, compose_config

ANY_VALUE = {
    "dataset.path": "any folder (a missing one is a DatasetError naming it)",
    "dataset.mask_command": "any command",
    "train.seed": "any integer",
    "dataset.synthetic.seed": "any integer",
}
"""Keys whose every value of their type means something; every other non-boolean key has a range."""


def _bad_values(value: object) -> list[object]:
    """Values of ``value``'s type, at least one of which is out of any range a key of that type has."""
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [-1, 0, 1, 3, 12, 96]
    if isinstance(value, float):
        return [-1.0, 0.0, 1.5]
    if isinstance(value, str):
        return ["no such value", "0", "x.obj"]
    if isinstance(value, list | tuple):
        return [[], [1.0], [0.5, 0.2], [0.0, 1.5], [0.0, 0.0, 0.0, 1.0, -1.0, 1.0]]
    raise AssertionError(f"no bad values for {value!r}")


def _with(config: Config, key: str, value: object) -> Config:
    """``config`` with ``key`` (dotted) set to ``value``."""
    head, _, rest = key.partition(".")
    if not rest:
        return replace(config, **{head: value})
    return replace(config, **{head: _with(getattr(config, head), rest, value)})


def test_help_lists_fewer_than_100_keys_and_only_the_schemas():
    out = subprocess.run([sys.executable, "train.py", "--help"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    keys = leaf_values(Config())
    assert len(keys) < 100
    shown = yaml_leaves(out.stdout.split("== Config ==", 1)[-1].split("Every key of the configuration")[0])
    assert shown == set(keys)


def yaml_leaves(text: str) -> set[str]:
    body = "\n".join(line for line in text.splitlines() if line and not line.startswith(("Override", "==")))
    return set(leaf_values(OmegaConf.create(body)))


def test_the_dataclass_defaults_are_the_run_defaults():
    assert leaf_values(compose_config()) == leaf_values(Config())


def test_every_key_with_a_range_rejects_a_bad_value_by_its_own_name():
    config = Config()
    config.validate()
    unchecked = []
    for key, value in leaf_values(config).items():
        if isinstance(value, bool) or key in ANY_VALUE:
            continue
        named = []
        for bad in _bad_values(value):
            try:
                _with(config, key, type(value)(bad) if isinstance(value, float) else bad).validate()
            except ConfigError as error:
                named.append(str(error).startswith(f"{key}=") and error.key == key)
        if not any(named):
            unchecked.append(key)
    assert not unchecked, f"keys no bad value is refused for, by their name: {unchecked}"


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("model.light.resolution", 96, "model.light.resolution=96: expected a power of two >= 8"),
        ("model.grid.resolution", 96, "model.grid.resolution=96: expected coarse_resolution (16) times a"),
        ("dataset.synthetic.light_resolution", 48, "dataset.synthetic.light_resolution=48: expected a power"),
        ("train.losses.eikonal_weight", -0.1, "train.losses.eikonal_weight=-0.1: expected a weight >= 0"),
        ("export.texture_resolution", 1000, "export.texture_resolution=1000: expected a power of two"),
    ],
)
def test_values_that_used_to_fail_late_fail_at_once(key, value, message):
    with pytest.raises(ConfigError) as error:
        _with(Config(), key, value).validate()
    assert str(error.value).startswith(message)
