"""Shared fixtures. The real Kafka broker is started once per test session (or taken from
CENTRALITA_TEST_KAFKA_BOOTSTRAP) and the catalog's topics are created on it; the real Triton server and the
Salesforce emulator are started once per session when a test asks for them."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from inference.triton_server import TritonServer
from infra.kafka_broker import KafkaBroker
from infra.kafka_clients import make_admin
from infra.processes import free_port
from infra.salesforce_emulator import SalesforceEmulator
from infra.settings import PROJECT_ROOT, Settings
from infra.topic_admin import catalog_for, create_topics


@dataclass(frozen=True)
class KafkaForTests:
    """The broker the integration tests use, and settings that point every client at it."""

    bootstrap: str
    settings: Settings
    broker: KafkaBroker | None  # None when an external broker was given

    def env(self) -> dict[str, str]:
        """Environment for a subprocess (CLI, Faust worker) that must use this broker."""
        env = {**os.environ, "CENTRALITA_KAFKA_BOOTSTRAP": self.bootstrap,
               "CENTRALITA_BROKER_SESSION_TIMEOUT_S": str(self.settings.broker_session_timeout_s)}
        if self.broker is not None:
            env.update({
                "CENTRALITA_STATE_DIR": str(self.broker.state_dir),
                "CENTRALITA_KAFKA_PORT": str(self.broker.port),
                "CENTRALITA_KAFKA_CONTROLLER_PORT": str(self.broker.controller_port),
            })
        return env


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaForTests]:
    external = os.environ.get("CENTRALITA_TEST_KAFKA_BOOTSTRAP")
    broker = None
    if external:
        settings = Settings(kafka_bootstrap=external, broker_session_timeout_s=10)
    else:
        state = Path(tmp_path_factory.mktemp("kafka-state"))
        port, controller = free_port(), free_port()
        settings = Settings(kafka_bootstrap=f"127.0.0.1:{port}", kafka_port=port, kafka_controller_port=controller,
                            state_dir=state, broker_session_timeout_s=10)
        broker = KafkaBroker.from_settings(settings)
        broker.start()
    try:
        create_topics(make_admin(settings), settings.kafka_bootstrap, catalog_for(settings))
        yield KafkaForTests(settings.kafka_bootstrap, settings, broker)
    finally:
        if broker is not None:
            broker.stop()


@dataclass(frozen=True)
class SalesforceForTests:
    """The emulator the tests use, a key pair registered for the JWT flow, and fault injection."""

    url: str
    emulator: SalesforceEmulator
    jwt_private_key: Path

    def faults(self, **spec: object) -> dict:
        import requests

        response = requests.post(f"{self.url}/__emulator/faults", json=spec, timeout=10)
        response.raise_for_status()
        return response.json()

    def stats(self) -> dict:
        import requests

        return requests.get(f"{self.url}/__emulator/stats", timeout=10).json()

    def cases(self, prefix: str) -> list[dict]:
        import requests

        return requests.get(f"{self.url}/__emulator/cases", params={"prefix": prefix}, timeout=10).json()

    def env(self) -> dict[str, str]:
        return {"CENTRALITA_SF_HOST": self.url, "CENTRALITA_SF_LOGIN_URL": self.url}


@pytest.fixture(scope="session")
def salesforce(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SalesforceForTests]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    state = Path(tmp_path_factory.mktemp("salesforce"))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = state / "jwt-private.pem"
    public = state / "jwt-public.pem"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    emulator = SalesforceEmulator(port=free_port(), state_dir=state,
                                  environment={"CENTRALITA_SF_JWT_PUBLIC_KEY_FILE": str(public)})
    emulator.start()
    try:
        yield SalesforceForTests(emulator.url, emulator, private)
    finally:
        emulator.stop()


@dataclass(frozen=True)
class TritonForTests:
    """The real Triton server of the test session, serving the checkout's `triton_models/`."""

    server: TritonServer

    def env(self) -> dict[str, str]:
        """Environment for a subprocess (worker, CLI) that must use this server."""
        return {**os.environ, **self.settings_env()}

    def settings_env(self) -> dict[str, str]:
        return {"CENTRALITA_TRITON_URL": self.server.grpc_address, "CENTRALITA_TRITON_HTTP_PORT": str(self.server.http_port),
                "CENTRALITA_TRITON_GRPC_PORT": str(self.server.grpc_port),
                "CENTRALITA_TRITON_METRICS_PORT": str(self.server.metrics_port)}


def start_triton(state: Path, repository: Path) -> TritonServer:
    server = TritonServer(http_port=free_port(), grpc_port=free_port(), metrics_port=free_port(), repository=repository,
                          state_dir=state, cache_dir=Settings().cache_dir)
    server.start()
    return server


@pytest.fixture(scope="session")
def triton(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonForTests]:
    server = start_triton(Path(tmp_path_factory.mktemp("triton")), PROJECT_ROOT / "triton_models")
    try:
        yield TritonForTests(server)
    finally:
        server.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/integration and tests/e2e is marked `integration` (`-m 'not integration'` is quick)."""
    for item in items:
        path = str(item.fspath)
        if f"{os.sep}integration{os.sep}" in path or f"{os.sep}e2e{os.sep}" in path:
            item.add_marker(pytest.mark.integration)
