"""The phases of a run, which of them are finished (``<run dir>/progress.json``), and which settings each
depends on, so that ``train.resume=true`` redoes exactly the phases whose settings changed and nothing
of an earlier configuration stays beside their new results.

    progress = RunProgress(run_dir, config, resume=True)
    progress.discard_unfinished()          # results of phases to be (re)done: gone before they are redone
    if not progress.finished("mesh"): ...; progress.mark("mesh")
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from data.files import write_text_atomic
from recon.config import Config, leaf_values
from recon.run_dir import PROGRESS_FILE, RunDir

PHASES = ("stage1", "textured", "stage1_mesh", "stage2", "mesh", "metrics")
"""In order: stage 1 trained; the stage-2 model made from it (``checkpoints/textured.pt``); the stage-1
asset exported; stage 2 trained; the final asset exported; the evaluation written."""


MACHINE_KEYS = (
    "device", "render_backend", "model.encoding_backend", "train.threads",
)  # fmt: skip
"""Where a run computes, not what (each choice is tested against its twin): a resumed run takes them from
its own command line (default auto), as the machine it resumes on may differ."""

BOOKKEEPING_KEYS = (
    "train.resume", "train.overwrite", "train.progress", "train.log_every", "train.image_every",
    "train.checkpoint_every", "train.checkpoint_minutes", "train.keep_checkpoints", *MACHINE_KEYS,
)  # fmt: skip
"""Settings that change no result (logging, checkpoint cadence, the machine): free to change on a resume
and left out of the phases' digests."""

UNDIGESTED_KEYS = (*BOOKKEEPING_KEYS, "dataset.path")
"""Also left out of the digests: the dataset's folder, which may move (its content is checked by the
run's fingerprint, recon.run_folder)."""

LATER_KEYS = (("export.", "textured"), ("stage2.normal_map", "textured"), ("stage2.", "stage2"),
              ("evaluate", "metrics"))  # fmt: skip
"""Settings of the phases after stage 1 (the first prefix that matches); every other key (dataset, model,
training) is stage 1's."""

_LAYOUT = RunDir(Path())  # the layout's names, relative to a run folder
OUTPUTS = {
    "stage1": (),  # its checkpoints are continued, never discarded
    "textured": (str(_LAYOUT.textured), str(_LAYOUT.stage2_checkpoints)),
    "stage1_mesh": (str(_LAYOUT.stage1_mesh), str(_LAYOUT.ground)),
    "stage2": (),  # its checkpoints are continued (they belong to the textured model, discarded with it)
    "mesh": (str(_LAYOUT.mesh),),
    "metrics": tuple(str(path) for path in (_LAYOUT.metrics_file, _LAYOUT.eval, _LAYOUT.eval_relight,
                                            _LAYOUT.eval_albedo, _LAYOUT.eval_mitsuba, _LAYOUT.relight_sky)),
}  # fmt: skip
"""What each phase writes into the run folder (besides checkpoints it continues from)."""


def phase_of(key: str) -> str:
    """The phase a configuration key (dotted) first matters to."""
    return next((phase for prefix, phase in LATER_KEYS if key.startswith(prefix)), "stage1")


def phase_digests(config: Config) -> dict[str, str]:
    """For each phase, a digest of the settings it and the phases before it depend on."""
    leaves = {key: value for key, value in leaf_values(config).items() if key not in UNDIGESTED_KEYS}
    digests = {}
    for index, phase in enumerate(PHASES):
        relevant = {key: value for key, value in leaves.items() if PHASES.index(phase_of(key)) <= index}
        text = json.dumps(relevant, sort_keys=True, default=str)
        digests[phase] = hashlib.sha256(text.encode()).hexdigest()[:16]
    return digests


def recorded_phases(run_dir: Path) -> dict[str, str]:
    """The finished phases ``progress.json`` records (phase: digest); empty when it is missing or unreadable
    (then every phase is redone, which is always safe)."""
    path = Path(run_dir) / PROGRESS_FILE
    try:
        return dict(json.loads(path.read_text()).get("finished", {}))
    except (OSError, ValueError, AttributeError, TypeError):
        return {}


class RunProgress:
    """The finished phases of a run, each stamped with the digest of its settings. A phase counts as
    finished only if every earlier one does, with its digest: change a phase's settings and resume, and
    that phase and every later one are done again. ``write``: whether this process records (rank 0)."""

    def __init__(self, run_dir: Path, config: Config, resume: bool, write: bool = True):
        self.run_dir, self.write = Path(run_dir), write
        self.path = self.run_dir / PROGRESS_FILE
        self.digests = phase_digests(config)
        self.done: dict[str, str] = recorded_phases(self.run_dir) if resume else {}

    def finished(self, phase: str) -> bool:
        earlier = PHASES[: PHASES.index(phase) + 1]
        return all(self.done.get(name) == self.digests[name] for name in earlier)

    def mark(self, phase: str, redone: bool = True) -> None:
        """Record ``phase`` as finished; when it was (re)done in this process, every later phase is
        forgotten (``redone=False``: it only resumed and found its work finished)."""
        if self.finished(phase) and not redone:
            return
        later = PHASES[PHASES.index(phase) :]
        self.done = {name: value for name, value in self.done.items() if name not in later}
        self.done[phase] = self.digests[phase]
        if self.write:
            write_text_atomic(self.path, json.dumps({"finished": self.done}, indent=2))

    def discard_unfinished(self) -> list[str]:
        """Delete what the phases that are not finished wrote earlier (under another configuration, or cut
        short), so that no result of an earlier configuration stays beside the new ones; returns the
        deleted entries."""
        deleted = []
        for phase in PHASES:
            if self.finished(phase):
                continue
            for name in OUTPUTS[phase]:
                path = self.run_dir / name
                if path.is_dir():
                    shutil.rmtree(path)
                elif path.exists():
                    path.unlink()
                else:
                    continue
                deleted.append(name)
        return deleted
