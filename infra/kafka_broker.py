"""The local Apache Kafka broker: a single KRaft node on 127.0.0.1, started from jars Maven fetched.

Why our own launcher and not a container: the machines this runs on (laptops, CI) have Java and Maven but
no Docker engine, and tests need a real broker. The jars come from Maven Central once per Kafka version into
the cache folder; storage is formatted once under the state folder; the broker runs as a detached process
tracked by a pid file so that `stack down` stops exactly what `stack up` started.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from infra.kafka_clients import jaas_config
from infra.maven import maven_jars
from infra.processes import ManagedProcess, StackError, port_is_open
from infra.settings import Settings

KAFKA_FILES = Path(__file__).resolve().parent / "kafka"
HOST = "127.0.0.1"
MIN_JAVA = 17


def java_executable() -> str:
    """The `java` to run the broker with ($JAVA_HOME first, then PATH); StackError when absent or too old."""
    java_home = os.environ.get("JAVA_HOME")
    candidate = str(Path(java_home) / "bin" / "java") if java_home else shutil.which("java")
    if not candidate or not Path(candidate).exists():
        raise StackError(
            f"Java {MIN_JAVA}+ is required to run the Kafka broker and none was found on PATH or in JAVA_HOME; "
            "install it (Debian: apt-get install openjdk-17-jre-headless) or run ./infra/bootstrap.sh"
        )
    out = subprocess.run([candidate, "-version"], capture_output=True, text=True, check=False).stderr
    match = re.search(r'version "(\d+)', out)
    if not match or int(match.group(1)) < MIN_JAVA:
        raise StackError(f"Kafka {MIN_JAVA}+ needs Java {MIN_JAVA} or newer; {candidate} reports: {out.strip()[:200]}")
    return candidate


@dataclass(frozen=True)
class BrokerSecurity:
    """TLS and SASL/SCRAM on the client listener, ACLs enforced (StandardAuthorizer, deny by default).

    For the local broker (tests, a developer trying TLS): a PEM keystore (private key + certificate chain), the
    CA that signed it (clients trust it), and the super user the broker itself and administrators authenticate
    as. The controller listener, on 127.0.0.1 only, uses SASL PLAIN with the same user: KRaft controllers cannot
    use SCRAM (its credentials live in the metadata they serve).
    """

    keystore_pem: Path
    ca_file: Path
    admin_username: str
    admin_password: str
    mechanism: str = "SCRAM-SHA-512"

    def client_config(self) -> dict[str, str]:
        """librdkafka properties of the super user (readiness checks, ACL and user administration)."""
        return {"security.protocol": "SASL_SSL", "sasl.mechanisms": self.mechanism, "sasl.username": self.admin_username,
                "sasl.password": self.admin_password, "ssl.ca.location": str(self.ca_file)}



@dataclass(frozen=True)
class KafkaBroker:
    """One local broker: where its jars, data and config live, and how to start, probe and stop it."""

    version: str
    state_dir: Path
    cache_dir: Path
    port: int
    controller_port: int
    heap: str = "512m"
    start_timeout_s: float = 60.0
    security: BrokerSecurity | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> "KafkaBroker":
        return cls(
            version=settings.kafka_version,
            state_dir=settings.state_dir,
            cache_dir=settings.cache_dir,
            port=settings.kafka_port,
            controller_port=settings.kafka_controller_port,
            heap=settings.kafka_heap,
            start_timeout_s=settings.kafka_start_timeout_s,
        )

    @property
    def bootstrap(self) -> str:
        return f"{HOST}:{self.port}"

    @property
    def process(self) -> ManagedProcess:
        return ManagedProcess("kafka", self.state_dir)

    @property
    def libs_dir(self) -> Path:
        return self.cache_dir / f"kafka-{self.version}" / "libs"

    @property
    def data_dir(self) -> Path:
        return self.state_dir / "kafka" / "data"

    @property
    def config_file(self) -> Path:
        return self.state_dir / "kafka" / "server.properties"

    # -- set-up steps, each idempotent ---------------------------------------------------------------

    def ensure_jars(self) -> Path:
        """Fetch the broker jars with Maven once per version; later calls find them in the cache."""
        return maven_jars(KAFKA_FILES / "pom.xml", self.libs_dir, {"kafka.version": self.version},
                          f"org.apache.kafka:kafka_2.13:{self.version}")

    def write_config(self) -> Path:
        """Write server.properties for a single combined broker+controller node on 127.0.0.1."""
        self.config_file.parent.mkdir(parents=True, exist_ok=True)
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{HOST}:{self.controller_port}",
            "listeners": f"PLAINTEXT://{HOST}:{self.port},CONTROLLER://{HOST}:{self.controller_port}",
            "advertised.listeners": f"PLAINTEXT://{HOST}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": "1",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "auto.create.topics.enable": "true",
            "log.retention.check.interval.ms": "60000",
        }
        if self.security is not None:
            props.update(self._secure_props(self.security))
        self.config_file.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        self.config_file.chmod(0o600)  # holds the super user's password when secured
        return self.config_file

    def _secure_props(self, security: BrokerSecurity) -> dict[str, str]:
        """SASL_SSL for clients and between brokers, SASL PLAIN on the local controller listener, ACLs on."""
        mechanism = security.mechanism.lower()
        admin = (security.admin_username, security.admin_password)
        return {
            "listeners": f"SASL_SSL://{HOST}:{self.port},CONTROLLER://{HOST}:{self.controller_port}",
            "advertised.listeners": f"SASL_SSL://{HOST}:{self.port}",
            "listener.security.protocol.map": "SASL_SSL:SASL_SSL,CONTROLLER:SASL_PLAINTEXT",
            "inter.broker.listener.name": "SASL_SSL",
            "sasl.enabled.mechanisms": security.mechanism,
            "sasl.mechanism.inter.broker.protocol": security.mechanism,
            f"listener.name.sasl_ssl.{mechanism}.sasl.jaas.config": jaas_config("scram.ScramLoginModule", *admin),
            "sasl.mechanism.controller.protocol": "PLAIN",
            "listener.name.controller.sasl.enabled.mechanisms": "PLAIN",
            "listener.name.controller.plain.sasl.jaas.config": jaas_config("plain.PlainLoginModule", *admin,
                                                                          users={security.admin_username: security.admin_password}),
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(security.keystore_pem),
            "ssl.truststore.type": "PEM",  # the broker is a TLS client of itself (inter-broker listener)
            "ssl.truststore.location": str(security.ca_file),
            "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            "super.users": f"User:{security.admin_username}",
            "allow.everyone.if.no.acl.found": "false",
            "auto.create.topics.enable": "false",
        }

    def ensure_formatted(self, java: str) -> None:
        """Format KRaft storage once; a formatted data folder keeps its cluster id across restarts."""
        if (self.data_dir / "meta.properties").exists():
            return
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        cmd = [java, "-cp", str(self.libs_dir / "*"), *self._log_opts(), "kafka.tools.StorageTool",
               "format", f"--cluster-id={cluster_id}", "-c", str(self.config_file)]  # an id may start with "-"
        if self.security is not None:  # the super user's SCRAM credential must exist before the broker starts
            s = self.security
            cmd += ["--add-scram", f"{s.mechanism}=[name={s.admin_username},password={s.admin_password}]"]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise StackError(f"formatting Kafka storage in {self.data_dir} failed:\n{(result.stdout + result.stderr)[-2000:]}")

    # -- life cycle ------------------------------------------------------------------------------------

    def is_ready(self) -> bool:
        """True when the broker answers a metadata request (not merely an open port)."""
        if not port_is_open(HOST, self.port):
            return False
        from confluent_kafka.admin import AdminClient

        secured = self.security.client_config() if self.security is not None else {}
        try:
            AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0, **secured}).list_topics(timeout=3)
            return True
        except Exception:  # noqa: BLE001 - any failure means "not ready yet"
            return False

    def start(self) -> str:
        """Start the broker unless ours already runs; returns a one-line description of what happened."""
        pid = self.process.pid()
        if pid is not None:
            if self.is_ready():
                return f"Kafka {self.version} already running on {self.bootstrap} (pid {pid})"
            self.process.wait_until(self.is_ready, self.start_timeout_s, "ready")
            return f"Kafka {self.version} running on {self.bootstrap} (pid {pid})"
        java = java_executable()
        for port in (self.port, self.controller_port):
            if port_is_open(HOST, port):
                raise StackError(
                    f"port {port} on {HOST} is taken by a process this stack did not start; stop it or choose "
                    "other ports with CENTRALITA_KAFKA_PORT / CENTRALITA_KAFKA_CONTROLLER_PORT"
                )
        self.ensure_jars()
        self.write_config()
        self.ensure_formatted(java)
        argv = [java, f"-Xmx{self.heap}", f"-Xms{self.heap}", "-XX:+UseG1GC", "-Djava.awt.headless=true",
                *self._log_opts(), "-cp", str(self.libs_dir / "*"), "kafka.Kafka", str(self.config_file)]
        pid = self.process.spawn(argv)
        self.process.wait_until(self.is_ready, self.start_timeout_s, "ready")
        return f"Kafka {self.version} started on {self.bootstrap} (pid {pid}, log {self.process.log_file})"

    def stop(self) -> str:
        """Stop our broker cleanly (SIGTERM, controlled shutdown)."""
        if self.process.stop(timeout_s=45):
            return f"Kafka stopped ({self.bootstrap})"
        return "Kafka was not running"

    def status(self) -> dict[str, str]:
        pid = self.process.pid()
        state = "stopped" if pid is None else ("ready" if self.is_ready() else "starting")
        return {
            "component": "kafka",
            "state": state,
            "pid": str(pid or "-"),
            "address": self.bootstrap,
            "log": str(self.process.log_file),
        }

    def _log_opts(self) -> list[str]:
        return [f"-Dlog4j2.configurationFile={KAFKA_FILES / 'log4j2.properties'}"]
