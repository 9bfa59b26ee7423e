"""The local Triton Inference Server: the `tritonserver` binary shipped in the `nvidia-pytriton` wheel.

The wheel carries the server, its Python backend and one backend stub per Python version. The launcher
assembles a backend folder (in the cache) with the stub built for the running interpreter, points the
server at `triton_models/` with explicit model control (new versions load through `centralita models
load` without a restart), binds it to 127.0.0.1 and waits until every model is ready.

The embedded Python of the stub ignores PYTHONPATH, so the server gets CENTRALITA_TRITON_SITE_PACKAGES
(this environment's site-packages) and each model's thin `model.py` adds it; see model_repository.py.
"""

from __future__ import annotations

import os
import shutil
import site
import sys
from dataclasses import dataclass
from pathlib import Path

import requests

from infra.processes import ManagedProcess, StackError, port_is_open
from infra.settings import Settings
from inference.model_repository import MODELS

HOST = "127.0.0.1"


def pytriton_dir() -> Path:
    """Where the nvidia-pytriton wheel keeps the server; a clear error when it is not installed."""
    try:
        import pytriton
    except ImportError:
        raise StackError("nvidia-pytriton is not installed: run `make install` (it brings the tritonserver binary)") from None
    return Path(pytriton.__file__).resolve().parent


@dataclass(frozen=True)
class TritonServer:
    http_port: int
    grpc_port: int
    metrics_port: int
    repository: Path
    state_dir: Path
    cache_dir: Path
    config_name: str = ""
    start_timeout_s: float = 120.0
    name: str = "triton"

    @classmethod
    def from_settings(cls, settings: Settings) -> "TritonServer":
        return cls(settings.triton_http_port, settings.triton_grpc_port, settings.triton_metrics_port,
                   settings.triton_model_repository, settings.state_dir, settings.cache_dir,
                   settings.triton_config_name, settings.triton_start_timeout_s)

    @property
    def http_url(self) -> str:
        return f"http://{HOST}:{self.http_port}"

    @property
    def grpc_address(self) -> str:
        return f"{HOST}:{self.grpc_port}"

    @property
    def process(self) -> ManagedProcess:
        return ManagedProcess(self.name, self.state_dir)

    def backend_dir(self) -> Path:
        """A backends/ folder whose Python backend has the stub for this interpreter (built once, cached)."""
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        source = pytriton_dir() / "tritonserver"
        stub = source / "python_backend_stubs" / version / "triton_python_backend_stub"
        if not stub.exists():
            raise StackError(f"nvidia-pytriton has no Python backend stub for Python {version}")
        target = self.cache_dir / "triton" / f"py{version}" / "backends"
        python_backend = target / "python"
        if not (python_backend / "triton_python_backend_stub").exists():
            if python_backend.exists():
                shutil.rmtree(python_backend)
            shutil.copytree(source / "backends" / "python", python_backend,
                            ignore=shutil.ignore_patterns("__pycache__"))
            shutil.copy2(stub, python_backend / "triton_python_backend_stub")
        return target

    def command(self) -> list[str]:
        argv = [str(pytriton_dir() / "tritonserver" / "bin" / "tritonserver"),
                f"--model-repository={self.repository}", f"--backend-directory={self.backend_dir()}",
                "--model-control-mode=explicit", *(f"--load-model={m}" for m in MODELS),
                f"--http-address={HOST}", f"--grpc-address={HOST}", f"--metrics-address={HOST}",
                f"--http-port={self.http_port}", f"--grpc-port={self.grpc_port}", f"--metrics-port={self.metrics_port}",
                "--allow-gpu-metrics=false", "--exit-timeout-secs=10", "--log-verbose=0"]
        if self.config_name:
            argv.append(f"--model-config-name={self.config_name}")
        return argv

    def environment(self) -> dict[str, str]:
        libs = pytriton_dir().parent / "nvidia_pytriton.libs"
        search_path = [p for p in [*site.getsitepackages(), site.getusersitepackages()] if Path(p).is_dir()]
        return {**os.environ,
                "LD_LIBRARY_PATH": os.pathsep.join(filter(None, [str(libs), os.environ.get("LD_LIBRARY_PATH", "")])),
                "CENTRALITA_TRITON_SITE_PACKAGES": os.pathsep.join(search_path)}

    def is_ready(self) -> bool:
        """Server ready (Triton's strict readiness: every model it was told to load is loaded)."""
        try:
            return requests.get(f"{self.http_url}/v2/health/ready", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def start(self) -> str:
        pid = self.process.pid()
        if pid is not None:
            self.process.wait_until(self.is_ready, self.start_timeout_s, "ready")
            return f"Triton already running on {self.grpc_address} (pid {pid})"
        for port in (self.http_port, self.grpc_port, self.metrics_port):
            if port_is_open(HOST, port):
                raise StackError(f"port {port} on {HOST} is taken by a process this stack did not start; choose others "
                                 "with CENTRALITA_TRITON_HTTP_PORT / _GRPC_PORT / _METRICS_PORT")
        if not any((self.repository / m / "config.pbtxt").exists() for m in MODELS):
            raise StackError(f"{self.repository} holds no Triton models")
        pid = self.process.spawn(self.command(), env=self.environment())
        self.process.wait_until(self.is_ready, self.start_timeout_s, "ready")
        return f"Triton started on {self.grpc_address} (gRPC), {self.http_url} (HTTP), metrics :{self.metrics_port} (pid {pid})"

    def stop(self) -> str:
        return f"Triton stopped ({self.grpc_address})" if self.process.stop(20) else "Triton was not running"

    def status(self) -> dict[str, str]:
        pid = self.process.pid()
        state = "stopped" if pid is None else ("ready" if self.is_ready() else "starting")
        return {"component": "triton", "state": state, "pid": str(pid or "-"), "address": self.grpc_address,
                "log": str(self.process.log_file)}
