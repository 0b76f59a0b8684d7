"""The run folder (``hydra.run.dir``, its layout: recon.run_dir) as the record of one run: what it records
(config.yaml, never rewritten; run.json, with every resume; train.log), the lock of the process that runs
there, and the rules that keep it one run's record.

A new run refuses a folder that holds an earlier run's results (``train.overwrite=true`` replaces the
folder's content as a whole); a resume needs a run there, and is given its own configuration and data
(recon.resume).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from omegaconf import OmegaConf
from torch.utils.tensorboard import SummaryWriter

from data.files import write_text_atomic
from data.fingerprint import fingerprint_difference
from recon.config import Config
from recon.errors import RunFolderError
from recon.run_dir import CONFIG_FILE, LOCK_FILE, RECORD_FILE, RunDir

_LAYOUT = RunDir(Path())  # the layout's names, relative to a run folder
RESULTS = tuple(str(path) for path in (
    _LAYOUT.config_file, _LAYOUT.record_file, _LAYOUT.progress_file, _LAYOUT.metrics_file,
    _LAYOUT.checkpoints, _LAYOUT.stage1_mesh, _LAYOUT.mesh, _LAYOUT.eval, _LAYOUT.tb,
))  # fmt: skip
"""What makes a folder an earlier run's (a folder only when it is not empty). A new run's leftovers from a
start that failed before its record was written (train.log, synthetic/) do not count."""


class RunLock:
    """One train.py at a time in a run folder: ``.lock`` names the process (PID and host) that runs there;
    the lock of a process that is gone (killed) is taken over."""

    def __init__(self, run_dir: Path):
        self.run_dir, self.path, self.held = Path(run_dir), Path(run_dir) / LOCK_FILE, False

    def acquire(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(3):
            try:
                handle = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                owner = self._owner()
                if owner:
                    raise RunFolderError(
                        f"{self.run_dir}: another train.py ({owner}) is running in this folder; wait for it "
                        "to end, or stop it (its checkpoints stay) and resume"
                    ) from None
                self.path.unlink(missing_ok=True)  # its process is gone
                continue
            with os.fdopen(handle, "w") as file:
                file.write(f"{os.getpid()} {socket.gethostname()}\n")
            self.held = True
            return

    def _owner(self) -> str | None:
        """``PID n on host`` of a live holder, else None (gone, or an unreadable lock)."""
        try:
            pid, host = self.path.read_text().split()
            pid = int(pid)
        except (OSError, ValueError):
            return None
        if host == socket.gethostname():
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return None
            except PermissionError:
                pass
        return f"PID {pid} on {host}"

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False


def earlier_run(run_dir: Path) -> list[str]:
    """The entries of :data:`RESULTS` that ``run_dir`` holds."""
    found = []
    for name in RESULTS:
        path = Path(run_dir) / name
        if path.is_file() or (path.is_dir() and any(path.iterdir())):
            found.append(name)
    return found


def check_new(run_dir: Path, overwrite: bool) -> None:
    """A new run may start in ``run_dir``: it holds no earlier run, or ``overwrite`` says to replace it."""
    found = earlier_run(run_dir)
    if found and not overwrite:
        raise RunFolderError(
            f"{run_dir}: holds an earlier run ({', '.join(found)}); continue it with train.resume=true, "
            "replace it with train.overwrite=true, or choose another hydra.run.dir"
        )


def check_resumable(run_dir: Path) -> None:
    if not (Path(run_dir) / CONFIG_FILE).is_file():
        raise RunFolderError(
            f"{run_dir}: no run to resume here (no {CONFIG_FILE}); check hydra.run.dir, or start a new run "
            "without train.resume=true"
        )


def clear(run_dir: Path) -> None:
    """Delete everything in ``run_dir`` (the earlier run that ``train.overwrite=true`` replaces): first moved
    aside in one rename, so the folder never holds a mix of the two runs' files."""
    run_dir = Path(run_dir)
    entries = list(run_dir.iterdir())
    if not entries:
        return
    aside = run_dir.with_name(f".{run_dir.name}.replaced")
    shutil.rmtree(aside, ignore_errors=True)
    run_dir.rename(aside)
    run_dir.mkdir()
    if (aside / LOCK_FILE).is_file():  # this run's own lock stays
        os.replace(aside / LOCK_FILE, run_dir / LOCK_FILE)
    shutil.rmtree(aside, ignore_errors=True)


def write_config(run_dir: Path, config: Config) -> None:
    """config.yaml, and the same text in TensorBoard."""
    text = OmegaConf.to_yaml(OmegaConf.structured(config))
    write_text_atomic(Path(run_dir) / CONFIG_FILE, text)
    with SummaryWriter(str(RunDir(run_dir).tb)) as writer:
        writer.add_text("config", "    " + text.replace("\n", "\n    "), 0)


def write_record(run_dir: Path, command: list[str], fingerprint: dict) -> None:
    """run.json of a new run: when and how it started, and what it trains on."""
    record = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "command": list(command),
              "dataset": fingerprint, "resumes": []}  # fmt: skip
    write_text_atomic(Path(run_dir) / RECORD_FILE, json.dumps(record, indent=1))


def add_resume(run_dir: Path, command: list[str], changes: dict[str, tuple], fingerprint: dict) -> None:
    """One more resume in run.json: its command line and the keys it changed ([before, after]); the
    dataset's fingerprint too when the run's start did not get to record it."""
    record = RunDir(run_dir).record()
    record.setdefault("dataset", fingerprint)
    entry = {"time": time.strftime("%Y-%m-%d %H:%M:%S"), "command": list(command),
             "changed": {key: list(values) for key, values in changes.items()}}  # fmt: skip
    record.setdefault("resumes", []).append(entry)
    write_text_atomic(Path(run_dir) / RECORD_FILE, json.dumps(record, indent=1))


def check_dataset(run_dir: Path, fingerprint: dict) -> None:
    """The resumed run's dataset is the one it started with (run.json's fingerprint; runs recorded before
    fingerprints existed are not checked)."""
    stored = RunDir(run_dir).record().get("dataset")
    problem = fingerprint_difference(stored, fingerprint) if stored else None
    if problem:
        raise RunFolderError(
            f"{run_dir}: the dataset is not the one this run was trained on ({problem}; the run's: "
            f"{stored.get('path')}); resume with that data, or start a new run in another hydra.run.dir"
        )


def load_config(run_dir: Path) -> Config:
    """The run's typed configuration as it stands: config.yaml with the keys its resumes changed."""
    return RunDir(run_dir).typed(Config)


class _Tee:
    """A text stream that writes through to ``stream`` and keeps whole lines for the log: a line redrawn
    with carriage returns (a progress bar) is kept as it last stood."""

    def __init__(self, stream, sink: list[str] | None):
        self.stream, self.sink, self.line = stream, sink, ""
        self.file = None

    def write(self, text: str) -> int:
        self.stream.write(text)
        for part in re.split(r"(\r\n|\r|\n)", text):
            if part in ("\n", "\r\n"):
                self._emit(self.line)
                self.line = ""
            elif part == "\r":  # the line is drawn again
                self.line = ""
            else:
                self.line += part
        return len(text)

    def _emit(self, line: str) -> None:
        stamped = f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] {line}\n"
        if self.file is not None:
            self.file.write(stamped)
            self.file.flush()
        elif self.sink is not None:
            self.sink.append(stamped)

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, name: str):  # isatty, fileno, encoding, ... of the real stream
        return getattr(self.stream, name)


class RunLog:
    """``train.log``: what the run prints (stdout and stderr), kept from :meth:`capture` on in memory and
    written once :meth:`attach` names the file, i.e. once the folder is this run's (a refused or failed
    start leaves no log in someone else's folder)."""

    def __init__(self):
        self.lines: list[str] = []
        self.tees: list[_Tee] = []
        self.file = None

    @contextlib.contextmanager
    def capture(self) -> Iterator[RunLog]:
        saved = sys.stdout, sys.stderr
        self.tees = [_Tee(saved[0], self.lines), _Tee(saved[1], self.lines)]
        sys.stdout, sys.stderr = self.tees
        try:
            yield self
        finally:
            sys.stdout, sys.stderr = saved
            for tee in self.tees:
                if tee.line:
                    tee._emit(tee.line)
            if self.file is not None:
                self.file.close()

    def attach(self, path: Path) -> None:
        """From now on lines go to ``path`` (appended), starting with those captured so far."""
        if self.file is not None or not self.tees:
            return
        self.file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed when the capture ends
        self.file.writelines(self.lines)
        self.file.flush()
        self.lines.clear()
        for tee in self.tees:
            tee.file = self.file
