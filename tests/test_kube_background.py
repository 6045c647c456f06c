"""Waiting for `make test`'s background kube-apiserver build: done, failed, gone, or still running."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from tests.kube.background import wait_for_background_build


def folder_with(tmp_path: Path, status: str | None, pid: int | None, log: str = "") -> Path:
    if status is not None:
        (tmp_path / "status").write_text(status + "\n", encoding="utf-8")
    if pid is not None:
        (tmp_path / "pid").write_text(f"{pid}\n", encoding="utf-8")
    (tmp_path / "log").write_text(log, encoding="utf-8")
    return tmp_path


def test_a_finished_build_is_no_failure(tmp_path: Path) -> None:
    assert wait_for_background_build(folder_with(tmp_path, "0", os.getpid()), timeout=5) == ""


def test_a_failed_build_says_why_with_the_end_of_its_log(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, "1", None, "step 1\\nstep 2\napt-get: unable to fetch\n")
    failure = wait_for_background_build(folder, timeout=5)
    assert failure.startswith("the background build failed (") and failure.endswith("apt-get: unable to fetch")


def test_no_background_build_or_a_dead_one_is_not_waited_for(tmp_path: Path) -> None:
    assert wait_for_background_build(tmp_path / "absent", timeout=30) == ""
    dead = 2**22 + 12345  # above the default pid_max: no such process
    assert wait_for_background_build(folder_with(tmp_path, None, dead), timeout=30) == ""


def test_a_running_build_is_waited_for_until_its_status_appears(tmp_path: Path) -> None:
    folder = folder_with(tmp_path, None, os.getpid())
    timer = threading.Timer(1.5, lambda: (folder / "status").write_text("0\n", encoding="utf-8"))
    timer.start()
    try:
        assert wait_for_background_build(folder, timeout=20) == ""
        assert (folder / "status").exists()
    finally:
        timer.cancel()
