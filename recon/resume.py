"""The configuration of a resumed run: the run's own (config.yaml and its earlier resumes,
recon.run_folder), changed only where the resume's command line asks and that cannot change what the
run already trained.

    config, changes = resumed_config(cfg, defaults, overrides, run_dir)   # train.py, train.resume=true

A key may change when it changes no result (logging, checkpoints, the machine: recon.progress), when it
gives more steps, when its phase has not started yet (e.g. stage2.* before stage 2's first checkpoint),
or when it is ``dataset.path`` (a moved dataset: its content is checked against the run's fingerprint).
Anything else is refused in one line naming the keys.
"""

from __future__ import annotations

from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, OmegaConf

from recon.config import Config, leaf_values, to_config
from recon.errors import RunFolderError
from recon.progress import BOOKKEEPING_KEYS, MACHINE_KEYS, phase_of, recorded_phases
from recon.run_dir import RunDir
from recon.run_folder import check_resumable, load_config
from recon.train.checkpoint import checkpoints_newest_first

STEP_KEYS = ("train.steps", "stage2.steps")
"""May grow on a resume (the stage continues; the phases after it are redone), never shrink."""


def command_keys(overrides: list[str], composed: Config, defaults: Config) -> set[str]:
    """The keys a command line sets: those it names (``key=value``, a whole section, ...) and those its
    presets (``+experiment=NAME``) move from the defaults."""
    values, default = leaf_values(composed), leaf_values(defaults)
    keys = {key for key, value in values.items() if default.get(key) != value}
    for override in OverridesParser.create().parse_overrides(overrides):
        named = override.key_or_group
        keys |= {key for key in values if key == named or key.startswith(f"{named}.")}
    return keys


def _started(phase: str, run_dir: Path, finished: dict[str, str]) -> bool:
    """Whether ``phase`` has trained or written anything: finished, or with checkpoints of its own."""
    if phase in finished:
        return True
    if phase == "textured":
        return RunDir(run_dir).textured.is_file()
    if phase == "stage2":
        return bool(checkpoints_newest_first(RunDir(run_dir).stage2_checkpoints))
    return phase == "stage1"


def _may_change(key: str, before, after, run_dir: Path, finished: dict[str, str]) -> bool:
    if key in BOOKKEEPING_KEYS or key == "dataset.path":
        return True
    if key in STEP_KEYS:
        return after >= before
    return not _started(phase_of(key), run_dir, finished)


def resumed_config(
    composed: DictConfig, defaults: DictConfig, overrides: list[str], run_dir: Path
) -> tuple[Config, dict[str, tuple]]:
    """The configuration a resume of ``run_dir`` runs with, and the keys it changes (key: (before, after)).

    ``composed``: Hydra's configuration for this command line; ``defaults``: the one for no arguments;
    ``overrides``: the command line's overrides as Hydra records them. The machine's keys (device,
    backends) are this command line's; every other key is the run's own unless the command line sets it
    and :func:`_may_change` allows it. A :class:`RunFolderError` when there is no run or a key is refused.
    """
    run_dir = Path(run_dir)
    check_resumable(run_dir)
    stored, new = load_config(run_dir), to_config(composed)
    if new.train.overwrite:
        raise RunFolderError(f"{run_dir}: train.resume=true and train.overwrite=true: choose one")
    before, after = leaf_values(stored), leaf_values(new)
    keys = command_keys(overrides, new, to_config(defaults)) - {"train.resume", *MACHINE_KEYS}
    changes = {key: (before.get(key), after[key]) for key in sorted(keys) if after[key] != before.get(key)}
    finished = recorded_phases(run_dir)
    refused = [
        key for key, (old, value) in changes.items() if not _may_change(key, old, value, run_dir, finished)
    ]
    if refused:
        listed = ", ".join(f"{key}={changes[key][1]!r} (the run's: {changes[key][0]!r})" for key in refused)
        raise RunFolderError(
            f"{run_dir}: train.resume=true cannot change what this run trained: {listed}; resume with the "
            f"run's own settings (`python train.py hydra.run.dir={run_dir} train.resume=true`, more steps "
            "allowed), or start a new run in another folder"
        )
    config = OmegaConf.structured(stored)
    for key, (_, value) in changes.items():
        OmegaConf.update(config, key, value, merge=False)
    for key in (*MACHINE_KEYS, "train.resume"):
        OmegaConf.update(config, key, after[key], merge=False)
    return OmegaConf.to_object(config), changes
