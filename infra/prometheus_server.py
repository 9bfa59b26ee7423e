"""Prometheus for the local stack: Debian's `prometheus` binary scraping every Centralita process and Triton, with
the project's alerting rules loaded, so `centralita stack up` shows the same metrics and alerts as production.

Triton and the emulator are scraped on their ports; workers, gateways and CRM sinks register themselves in
`<state>/prometheus/targets/` when they start (Prometheus file service discovery), on whatever port they got. Prometheus is optional locally: without the binary the stack says so and runs without it.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import requests
import yaml

from infra.processes import ManagedProcess, StackError, pid_is_alive, port_is_open
from infra.settings import PROJECT_ROOT, Settings

HOST = "127.0.0.1"
RULES_FILE = PROJECT_ROOT / "infra" / "prometheus" / "rules.yml"


def local_targets(settings: Settings) -> dict[str, list[str]]:
    """Scrape job -> addresses of the stack's own servers. Workers, gateways and sinks register themselves when
    they start (`register_process`), on whatever port they were given."""
    return {"salesforce-emulator": [f"{HOST}:{settings.sf_emulator_port}"],
            "triton": [f"{HOST}:{settings.triton_metrics_port}"]}


def register_process(settings: Settings, job: str, port: int) -> Path | None:
    """Have this process scraped by the local stack's Prometheus under `job` until it exits; nothing when the
    local stack has no Prometheus (in Kubernetes, ServiceMonitors find the pods)."""
    server = PrometheusServer.from_settings(settings)
    if not server.targets_dir.is_dir():
        return None
    for stale in server.targets_dir.glob(f"{job}-*.json"):  # left by a process that was killed
        pid = stale.stem.rsplit("-", 1)[-1]
        if pid.isdigit() and not pid_is_alive(int(pid)):
            stale.unlink(missing_ok=True)
    path = server.register(f"{job}-{os.getpid()}", job, f"{HOST}:{port}")
    atexit.register(path.unlink, missing_ok=True)
    return path


@dataclass(frozen=True)
class PrometheusServer:
    port: int
    state_dir: Path
    targets: dict[str, list[str]] = field(hash=False, compare=False)
    scrape_interval_s: float = 5.0
    binary: str = "prometheus"

    @classmethod
    def from_settings(cls, settings: Settings) -> "PrometheusServer":
        return cls(settings.prometheus_port, settings.state_dir, local_targets(settings), settings.prometheus_scrape_interval_s)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def folder(self) -> Path:
        return self.state_dir / "prometheus"

    @property
    def targets_dir(self) -> Path:
        return self.folder / "targets"

    @property
    def process(self) -> ManagedProcess:
        return ManagedProcess("prometheus", self.state_dir)

    def config(self) -> dict:
        interval = f"{self.scrape_interval_s:g}s"
        jobs = [{"job_name": job, "static_configs": [{"targets": addresses}]} for job, addresses in self.targets.items()]
        jobs.append({"job_name": "registered", "file_sd_configs": [{"files": [str(self.targets_dir / "*.json")],
                                                                     "refresh_interval": interval}]})
        return {"global": {"scrape_interval": interval, "evaluation_interval": interval},
                "rule_files": [str(RULES_FILE)], "scrape_configs": jobs}

    def register(self, name: str, job: str, address: str) -> Path:
        """Have a process on a port of its own scraped under `job` (file service discovery)."""
        self.targets_dir.mkdir(parents=True, exist_ok=True)
        path = self.targets_dir / f"{name}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps([{"targets": [address], "labels": {"job": job}}]))
        tmp.replace(path)  # Prometheus never reads half a file
        return path

    def is_ready(self) -> bool:
        try:
            return requests.get(f"{self.url}/-/ready", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def start(self) -> str:
        binary = shutil.which(self.binary)
        if binary is None:
            return "Prometheus not installed (Debian: apt-get install prometheus); the stack runs without it"
        pid = self.process.pid()
        if pid is not None:
            self.process.wait_until(self.is_ready, 30, "ready")
            return f"Prometheus already running on {self.url} (pid {pid})"
        if port_is_open(HOST, self.port):
            raise StackError(f"port {self.port} on {HOST} is taken by a process this stack did not start; "
                             "choose another with CENTRALITA_PROMETHEUS_PORT")
        self.targets_dir.mkdir(parents=True, exist_ok=True)
        config_file = self.folder / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        pid = self.process.spawn([binary, f"--config.file={config_file}", f"--storage.tsdb.path={self.folder / 'data'}",
                                  f"--web.listen-address={HOST}:{self.port}", "--storage.tsdb.retention.time=2d",
                                  "--web.enable-lifecycle"])
        self.process.wait_until(self.is_ready, 30, "ready")
        return f"Prometheus started on {self.url} (pid {pid}, rules {RULES_FILE.name}, scraping {len(self.targets)} jobs)"

    def stop(self) -> str:
        return f"Prometheus stopped ({self.url})" if self.process.stop(20) else "Prometheus was not running"

    def status(self) -> dict[str, str]:
        pid = self.process.pid()
        if shutil.which(self.binary) is None:
            state = "not installed"
        else:
            state = "stopped" if pid is None else ("ready" if self.is_ready() else "starting")
        return {"component": "prometheus", "state": state, "pid": str(pid or "-"), "address": self.url,
                "log": str(self.process.log_file)}

    def query(self, expr: str) -> list[dict]:
        """Instant query; the result vector (raises on a query Prometheus refuses)."""
        response = requests.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        body = response.json()
        if body.get("status") != "success":
            raise ValueError(f"Prometheus refused {expr!r}: {body.get('error')}")
        return body["data"]["result"]

    def get(self, path: str) -> dict:
        return requests.get(f"{self.url}{path}", timeout=10).json()["data"]
