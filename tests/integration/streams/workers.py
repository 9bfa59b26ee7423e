"""Start a real `centralita worker` process against the test broker."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from infra.processes import free_port


def start_worker(kafka, tmp_path: Path, app_id: str, extra_env: dict | None = None, loglevel: str = "info") -> subprocess.Popen:
    port = free_port()
    env = {**kafka.env(), "CENTRALITA_APP_ID": app_id, "CENTRALITA_STATE_DIR": str(tmp_path / "state"),
           "CENTRALITA_WORKER_WEB_PORT": str(port), **(extra_env or {})}
    log = open(tmp_path / f"worker-{app_id}.log", "ab")
    worker = subprocess.Popen([sys.executable, "-m", "infra.cli", "worker", "-l", loglevel], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    worker.web_port = port  # type: ignore[attr-defined]
    return worker


def stop_worker(worker: subprocess.Popen, timeout_s: float = 30) -> None:
    """SIGTERM, then SIGKILL if the worker has not stopped in time."""
    worker.terminate()
    try:
        worker.wait(timeout_s)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait(10)
