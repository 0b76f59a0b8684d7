"""recon.run_folder: what marks a folder as a run's, replacing it whole, the run's log, its small files."""

from __future__ import annotations

import sys

import pytest
from tqdm import tqdm

from recon.errors import RunFolderError
from recon.run_dir import RunDir
from recon.run_folder import RunLog, check_new, clear, earlier_run, load_config


def test_what_makes_a_folder_an_earlier_runs(tmp_path):
    (tmp_path / "train.log").write_text("a start that failed")
    (tmp_path / "synthetic").mkdir()
    (tmp_path / "checkpoints").mkdir()  # empty
    assert earlier_run(tmp_path) == []
    check_new(tmp_path, overwrite=False)
    (tmp_path / "metrics.json").write_text("{}")
    (tmp_path / "mesh").mkdir()
    (tmp_path / "mesh" / "mesh.obj").write_text("v 0 0 0")
    assert earlier_run(tmp_path) == ["metrics.json", "mesh"]
    with pytest.raises(RunFolderError, match=r"holds an earlier run \(metrics.json, mesh\)"):
        check_new(tmp_path, overwrite=False)
    check_new(tmp_path, overwrite=True)
    clear(tmp_path)
    assert tmp_path.is_dir() and list(tmp_path.iterdir()) == []
    assert not tmp_path.with_name(f".{tmp_path.name}.replaced").exists()


def test_the_log_keeps_lines_once_the_folder_is_the_runs(tmp_path, capsys):
    log = RunLog()
    with log.capture():
        print("before the folder is the run's")
        for _ in tqdm(range(3), desc="stage 1", file=sys.stderr):
            pass
        print("warning: something", file=sys.stderr)
        log.attach(tmp_path / "train.log")
        print("after", end="")
    lines = (tmp_path / "train.log").read_text().splitlines()
    assert [line.split("] ", 1)[1] for line in lines][:1] == ["before the folder is the run's"]
    assert lines[1].split("] ", 1)[1].startswith("stage 1: 100%|") and len(lines) == 4
    assert [line.split("] ", 1)[1] for line in lines][2:] == ["warning: something", "after"]
    assert "stage 1:   0%" in capsys.readouterr().err  # the terminal still sees the live bar
    never = RunLog()
    with never.capture():
        print("a refused start")
    assert (tmp_path / "train.log").read_text().count("\n") == 4  # written nowhere


def test_small_files_that_do_not_parse(tmp_path):
    (tmp_path / "scene_transform.json").write_text("{not json")
    with pytest.raises(RunFolderError, match="scene_transform.json: malformed"):
        RunDir(tmp_path).up()
    (tmp_path / "config.yaml").write_text("train:\n  stepz: 3\n")
    with pytest.raises(
        RunFolderError, match=r"config.yaml: not a configuration this version reads \(.*stepz"
    ):
        load_config(tmp_path)


def test_one_train_py_at_a_time(tmp_path):
    import os
    import subprocess

    from recon.run_dir import LOCK_FILE
    from recon.run_folder import RunLock

    lock = RunLock(tmp_path)
    lock.acquire()
    with pytest.raises(RunFolderError, match=rf"another train.py \(PID {os.getpid()} on .*\) is running"):
        RunLock(tmp_path).acquire()
    lock.release()
    assert not (tmp_path / LOCK_FILE).exists()
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    (tmp_path / LOCK_FILE).write_text(f"{gone.stdout.strip()} {__import__('socket').gethostname()}\n")
    taken = RunLock(tmp_path)
    taken.acquire()  # the killed run's lock is taken over
    assert (tmp_path / LOCK_FILE).read_text().split()[0] == str(os.getpid())
    taken.release()
