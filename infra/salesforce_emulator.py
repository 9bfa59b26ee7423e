"""The Salesforce emulator as a stack component: a uvicorn process on 127.0.0.1 with its SQLite file."""

from __future__ import annotations

import sys
import os
from dataclasses import dataclass, field
from pathlib import Path

import requests

from infra.processes import ManagedProcess, StackError, port_is_open
from infra.settings import Settings

HOST = "127.0.0.1"


@dataclass(frozen=True)
class SalesforceEmulator:
    port: int
    state_dir: Path
    environment: dict[str, str] | None = field(default=None, hash=False, compare=False)  # CENTRALITA_* for the process

    @classmethod
    def from_settings(cls, settings: Settings) -> "SalesforceEmulator":
        return cls(port=settings.sf_emulator_port, state_dir=settings.state_dir)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def db_path(self) -> Path:
        return self.state_dir / "salesforce.sqlite"

    @property
    def process(self) -> ManagedProcess:
        return ManagedProcess("salesforce-emulator", self.state_dir)

    def is_ready(self) -> bool:
        try:
            return requests.get(f"{self.url}/__emulator/health", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def start(self) -> str:
        pid = self.process.pid()
        if pid is not None:
            self.process.wait_until(self.is_ready, 30, "ready")
            return f"Salesforce emulator already running on {self.url} (pid {pid})"
        if port_is_open(HOST, self.port):
            raise StackError(f"port {self.port} on {HOST} is taken by a process this stack did not start; "
                             "choose another with CENTRALITA_SF_EMULATOR_PORT")
        pid = self.process.spawn([sys.executable, "-m", "infra.cli", "salesforce-emulator",
                                  "--port", str(self.port), "--db", str(self.db_path)],
                                 env={**os.environ, **(self.environment or {})})
        self.process.wait_until(self.is_ready, 30, "ready")
        return f"Salesforce emulator started on {self.url} (pid {pid}, records in {self.db_path})"

    def stop(self) -> str:
        return f"Salesforce emulator stopped ({self.url})" if self.process.stop(10) else "Salesforce emulator was not running"

    def status(self) -> dict[str, str]:
        pid = self.process.pid()
        state = "stopped" if pid is None else ("ready" if self.is_ready() else "starting")
        return {"component": "salesforce-emulator", "state": state, "pid": str(pid or "-"), "address": self.url,
                "log": str(self.process.log_file)}
