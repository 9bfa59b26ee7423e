"""The real local broker with TLS and SASL/SCRAM and ACLs from `infra.kafka_acls`: authenticated components
work within their ACLs, everything else is refused; a Faust worker runs end to end as its own user.

Certificates are made in the test; SCRAM users get random passwords; nothing secret is in the repository.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer

from infra.kafka_acls import apply_acls, component_access, upsert_scram_users
from infra.kafka_broker import BrokerSecurity, KafkaBroker
from infra.kafka_clients import make_admin, make_consumer, make_producer
from infra.processes import free_port
from infra.settings import Settings
from infra.topic_admin import create_topics
from schemas.codec import AvroCodec
from schemas.topics import CATALOG
from streams.ids import message_id
from tests.integration.infra.certificates import make_pki
from tests.integration.streams.workers import start_worker, stop_worker, wait_ready


class SecureKafka:
    """A secured broker, the catalog's topics, one SCRAM user per component and their ACLs."""

    def __init__(self, folder: Path) -> None:
        self.pki = make_pki(folder / "pki")
        self.admin_password = secrets.token_urlsafe(18)
        port = free_port()
        self.security = BrokerSecurity(self.pki.keystore_pem, self.pki.ca_file, "admin", self.admin_password)
        self.broker = KafkaBroker(version=Settings().kafka_version, state_dir=folder / "state", cache_dir=Settings().cache_dir,
                                  port=port, controller_port=free_port(), security=self.security)
        self.bootstrap = self.broker.bootstrap
        self.passwords = {access.component: secrets.token_urlsafe(18) for access in component_access(Settings())}

    def settings(self, user: str, password: str | None = None, **overrides) -> Settings:
        return Settings(kafka_bootstrap=self.bootstrap, kafka_security_protocol="SASL_SSL", kafka_sasl_username=user,
                        kafka_sasl_password=password if password is not None else self.passwords.get(user, self.admin_password),
                        kafka_ssl_ca_file=self.pki.ca_file, broker_session_timeout_s=10, **overrides)

    def start(self) -> None:
        self.broker.start()
        admin = make_admin(self.settings("admin"))
        create_topics(admin, self.bootstrap, CATALOG)
        upsert_scram_users(admin, self.passwords)
        apply_acls(admin, component_access(self.settings("admin")))

    def env(self, user: str) -> dict[str, str]:
        return {"CENTRALITA_KAFKA_BOOTSTRAP": self.bootstrap, "CENTRALITA_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
                "CENTRALITA_KAFKA_SASL_USERNAME": user, "CENTRALITA_KAFKA_SASL_PASSWORD": self.passwords[user],
                "CENTRALITA_KAFKA_SSL_CA_FILE": str(self.pki.ca_file)}


@pytest.fixture(scope="module")
def secure(tmp_path_factory) -> SecureKafka:
    kafka = SecureKafka(Path(tmp_path_factory.mktemp("secure-kafka")))
    kafka.start()
    yield kafka
    kafka.broker.stop()


def deliver(producer: Producer, topic: str, value: bytes = b"{}") -> KafkaError | None:
    """Produce one record and wait for its delivery report: None when delivered, else the error."""
    outcome: list = []
    producer.produce(topic, value=value, on_delivery=lambda err, msg: outcome.append(err))
    producer.flush(20)
    assert outcome, f"no delivery report for {topic}"
    return outcome[0]


def connection_errors(config: dict) -> list[KafkaError]:
    """Errors a client with `config` reports while trying to read metadata (an empty list means it connected)."""
    errors: list[KafkaError] = []
    producer = Producer({**config, "error_cb": errors.append, "socket.timeout.ms": 5000})
    try:
        producer.list_topics(timeout=8)
        return []
    except KafkaException as exc:
        producer.poll(1)  # serves error_cb: the reason (authentication, TLS) behind the metadata failure
        return errors or [exc.args[0]]


def test_a_component_writes_its_own_topics_and_nothing_else(secure: SecureKafka) -> None:
    gateway = make_producer(secure.settings("centralita-gateway"))
    assert deliver(gateway, "channel.webchat.inbound.raw") is None
    refused = deliver(gateway, "conversation.outbound")
    assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED

    sink = make_producer(secure.settings("centralita-crm-sink"))
    assert deliver(sink, "crm.case-events.dlq") is None
    refused = deliver(sink, "crm.case-events")  # the sink reads case events; only the worker writes them
    assert refused is not None and refused.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_a_component_reads_only_its_topics_with_its_group(secure: SecureKafka) -> None:
    worker = make_producer(secure.settings("centralita-worker"))
    assert deliver(worker, "crm.case-events", b"case") is None
    allowed = make_consumer(secure.settings("centralita-crm-sink"), group_id="centralita-crm-sink")
    allowed.subscribe(["crm.case-events"])
    got, deadline = None, time.monotonic() + 30
    while got is None and time.monotonic() < deadline:
        msg = allowed.poll(1)
        if msg is not None:
            assert msg.error() is None, msg.error()
            got = msg.value()
    allowed.close()
    assert got == b"case"

    for topic, group in (("conversation.log", "centralita-crm-sink"), ("crm.case-events", "somebody-elses-group")):
        consumer = make_consumer(secure.settings("centralita-crm-sink"), group_id=group)
        consumer.subscribe([topic])
        error, deadline = None, time.monotonic() + 20
        while error is None and time.monotonic() < deadline:
            msg = consumer.poll(1)
            if msg is not None and msg.error() is not None:
                error = msg.error()
        consumer.close()
        assert error is not None and error.code() in (KafkaError.TOPIC_AUTHORIZATION_FAILED, KafkaError.GROUP_AUTHORIZATION_FAILED), \
            (topic, group, error)


def test_clients_without_valid_credentials_or_tls_are_refused(secure: SecureKafka) -> None:
    from infra.kafka_clients import client_config

    good = client_config(secure.settings("centralita-gateway"))
    good.pop("logger")
    assert connection_errors(good) == []

    wrong_password = {**good, "sasl.password": "not-the-password"}
    errors = connection_errors(wrong_password)
    assert any(e.code() == KafkaError._AUTHENTICATION for e in errors), errors

    unknown_user = {**good, "sasl.username": "mallory"}
    assert any(e.code() == KafkaError._AUTHENTICATION for e in connection_errors(unknown_user))

    plaintext = {"bootstrap.servers": secure.bootstrap}
    assert connection_errors(plaintext), "a plaintext client must not get metadata from a SASL_SSL listener"

    untrusted = {**good, "ssl.ca.location": str(secure.pki.other_ca_file)}
    errors = connection_errors(untrusted)
    assert errors and all(e.code() != KafkaError.NO_ERROR for e in errors)
    assert any("certificate" in e.str().lower() or e.code() == KafkaError._SSL for e in errors), errors


def test_a_faust_worker_runs_as_its_own_user_under_acls(secure: SecureKafka, triton, tmp_path: Path) -> None:
    """Gateway user publishes a raw web chat message; the worker (SASL_SSL, its ACLs only) normalizes and answers;
    the channel integration user reads the formatted reply."""
    tag = uuid.uuid4().hex[:8]

    env = {**triton.env(), **secure.env("centralita-worker"), "CENTRALITA_BROKER_SESSION_TIMEOUT_S": "10"}
    worker = start_worker(env, tmp_path, "centralita")  # app id `centralita`: the worker's ACL prefix
    try:
        wait_ready(worker, 120)
        replies = make_consumer(secure.settings("channel-integrations"), group_id=f"integrations-{tag}",
                                **{"auto.offset.reset": "earliest"})
        replies.subscribe(["channel.webchat.outbound"])
        gateway = make_producer(secure.settings("centralita-gateway"))
        provider_id = f"secure-{tag}"
        body = json.dumps({"type": "message", "message_id": provider_id, "visitor_id": f"v-{tag}",
                           "text": "hola, ¿dónde está mi pedido 4711?"}).encode()
        assert deliver(gateway, "channel.webchat.inbound.raw", body) is None
        wanted = message_id("webchat", provider_id)
        reply, deadline = None, time.monotonic() + 90
        while reply is None and time.monotonic() < deadline:
            assert worker.poll() is None, worker.log_path.read_text()[-3000:]
            msg = replies.poll(1)
            if msg is not None and msg.error() is None and json.loads(msg.value()).get("in_reply_to") == wanted:
                reply = json.loads(msg.value())
        replies.close()
        assert reply is not None, f"no reply; worker log:\n{worker.log_path.read_text()[-3000:]}"
        assert reply["text"]
        log_text = worker.log_path.read_text()
        assert "AUTHORIZATION_FAILED" not in log_text.upper() and "Authorization failed" not in log_text, log_text[-3000:]
        inbound = make_consumer(secure.settings("centralita-subject-requests"), group_id=f"centralita-audit-{tag}",
                                **{"auto.offset.reset": "earliest"})
        inbound.subscribe(["conversation.inbound"])
        found, deadline = False, time.monotonic() + 30
        while not found and time.monotonic() < deadline:
            msg = inbound.poll(1)
            found = msg is not None and msg.error() is None and AvroCodec().decode(msg.value())["message_id"] == wanted
        inbound.close()
        assert found, "the normalized message is not on conversation.inbound"
    finally:
        stop_worker(worker)
