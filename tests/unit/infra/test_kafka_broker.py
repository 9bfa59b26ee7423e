"""The broker launcher refuses clearly before it starts anything: no Java, an old Java, a taken port."""

from __future__ import annotations

import socket
import stat
from pathlib import Path

import pytest

from infra.kafka_broker import KafkaBroker, java_executable
from infra.processes import StackError, free_port


def _broker(tmp_path: Path, port: int, controller: int) -> KafkaBroker:
    return KafkaBroker(version="4.1.1", state_dir=tmp_path / "state", cache_dir=tmp_path / "cache",
                       port=port, controller_port=controller)


def test_missing_java_is_refused_with_how_to_install_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no java on this PATH
    with pytest.raises(StackError, match=r"Java 17\+ is required.*apt-get install openjdk-17-jre-headless"):
        _broker(tmp_path, free_port(), free_port()).start()
    assert not (tmp_path / "state" / "kafka.pid").exists()


def test_too_old_java_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "jdk" / "bin" / "java"
    fake.parent.mkdir(parents=True)
    fake.write_text('#!/bin/sh\necho \'openjdk version "11.0.2" 2019-01-15\' >&2\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "jdk"))
    with pytest.raises(StackError, match="needs Java 17 or newer"):
        java_executable()


def test_taken_port_is_refused_without_starting(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(StackError, match=f"port {port} on 127.0.0.1 is taken by a process this stack did not start"):
            _broker(tmp_path, port, free_port()).start()
    assert not (tmp_path / "state" / "kafka.pid").exists()


def test_status_of_a_stack_that_never_ran(tmp_path: Path) -> None:
    status = _broker(tmp_path, free_port(), free_port()).status()
    assert status["state"] == "stopped" and status["pid"] == "-"


def test_config_binds_loopback_only(tmp_path: Path) -> None:
    broker = _broker(tmp_path, 19092, 19093)
    config = broker.write_config().read_text()
    assert "listeners=PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093" in config
    assert "0.0.0.0" not in config
