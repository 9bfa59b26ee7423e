"""Start a real `centralita worker` process against the test broker."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from infra.processes import free_port


def start_worker(kafka, tmp_path: Path, app_id: str, extra_env: dict | None = None, loglevel: str = "info") -> subprocess.Popen:
    """`kafka` is the test broker fixture, or a ready environment (a dict) for a worker on another stack."""
    port = free_port()
    base = kafka if isinstance(kafka, dict) else kafka.env()
    env = {**base, "CENTRALITA_APP_ID": app_id, "CENTRALITA_STATE_DIR": str(tmp_path / "state"),
           "CENTRALITA_WORKER_WEB_PORT": str(port), **(extra_env or {})}
    log_path = tmp_path / f"worker-{app_id}.log"
    log = open(log_path, "ab")
    worker = subprocess.Popen([sys.executable, "-m", "infra.cli", "worker", "-l", loglevel], env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    worker.web_port = port  # type: ignore[attr-defined]
    worker.log_path = log_path  # type: ignore[attr-defined]
    return worker


def wait_ready(worker: subprocess.Popen, timeout_s: float = 60) -> None:
    """Until this worker process logs that it has joined the group, recovered its tables and is consuming."""
    marker = f"[{worker.pid}] [INFO] [^Worker]: Ready".encode()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert worker.poll() is None, "worker died while starting"
        if marker in worker.log_path.read_bytes():  # type: ignore[attr-defined]
            return
        time.sleep(0.2)
    raise AssertionError(f"worker {worker.pid} not ready in {timeout_s}s")


def stop_worker(worker: subprocess.Popen, timeout_s: float = 30) -> None:
    """SIGTERM, then SIGKILL if the worker has not stopped in time."""
    worker.terminate()
    try:
        worker.wait(timeout_s)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait(10)
