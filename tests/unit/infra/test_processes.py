"""Background processes are tracked by pid file and stopped by pid only."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from infra.processes import ManagedProcess, StackError, pid_is_alive


def test_spawn_track_and_stop(tmp_path: Path) -> None:
    proc = ManagedProcess("sleeper", tmp_path)
    pid = proc.spawn([sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)"])
    assert proc.pid() == pid and pid_is_alive(pid)
    proc.wait_until(lambda: "up" in proc.log_tail(), 10, "up")
    assert proc.stop(timeout_s=5) is True
    assert not pid_is_alive(pid) and proc.pid() is None and not proc.pid_file.exists()
    assert proc.stop() is False


def test_a_process_that_dies_while_starting_reports_its_log(tmp_path: Path) -> None:
    proc = ManagedProcess("crasher", tmp_path)
    proc.spawn([sys.executable, "-c", "import sys; print('bad config: xyz', flush=True); sys.exit(3)"])
    with pytest.raises(StackError, match="crasher exited while starting(.|\n)*bad config: xyz"):
        proc.wait_until(lambda: False, 10, "ready")


def test_stale_pid_file_is_ignored(tmp_path: Path) -> None:
    proc = ManagedProcess("ghost", tmp_path)
    proc.pid_file.write_text("999999999")
    assert proc.pid() is None and not proc.pid_file.exists()
