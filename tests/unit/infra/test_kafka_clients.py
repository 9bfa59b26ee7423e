"""TLS/SASL settings become the same client configuration for confluent-kafka, Faust and Spark."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.kafka_clients import KafkaSecurityError, client_config, security_config
from infra.settings import Settings
from jobs.anonymize import kafka_security_options
from streams.app import broker_credentials


def test_plaintext_adds_nothing() -> None:
    assert security_config(Settings()) == {}
    assert broker_credentials(Settings()) is None
    assert kafka_security_options(Settings()) == {}


def test_sasl_ssl_configures_every_client(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("")  # only the path is used here
    settings = Settings(kafka_security_protocol="sasl_ssl", kafka_sasl_username="centralita-worker",
                        kafka_sasl_password="s3cret-pass", kafka_ssl_ca_file=ca)
    config = client_config(settings)
    assert config["security.protocol"] == "SASL_SSL"
    assert config["sasl.mechanisms"] == "SCRAM-SHA-512"
    assert (config["sasl.username"], config["sasl.password"]) == ("centralita-worker", "s3cret-pass")
    assert config["ssl.ca.location"] == str(ca)
    spark = kafka_security_options(settings)
    assert spark["kafka.security.protocol"] == "SASL_SSL"
    assert spark["kafka.sasl.jaas.config"] == ('org.apache.kafka.common.security.scram.ScramLoginModule required '
                                               'username="centralita-worker" password="s3cret-pass";')
    assert spark["kafka.ssl.truststore.location"] == str(ca)


def test_password_file_wins_and_is_stripped(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("from-a-mounted-secret\n")
    settings = Settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username="u", kafka_sasl_password="env",
                        kafka_sasl_password_file=secret)
    assert security_config(settings)["sasl.password"] == "from-a-mounted-secret"
    credentials = broker_credentials(settings)
    assert credentials.password == "from-a-mounted-secret"
    assert credentials.protocol.value == "SASL_PLAINTEXT" and credentials.mechanism.value == "SCRAM-SHA-512"
    assert "from-a-mounted-secret" not in repr(credentials)


def test_quotes_in_a_password_do_not_break_the_jaas_line() -> None:
    settings = Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_username="u", kafka_sasl_password='a"b\\c')
    assert kafka_security_options(settings)["kafka.sasl.jaas.config"].endswith('password="a\\"b\\\\c";')


@pytest.mark.parametrize("overrides, fragment", [
    ({"kafka_security_protocol": "TLS"}, "CENTRALITA_KAFKA_SECURITY_PROTOCOL"),
    ({"kafka_security_protocol": "SASL_SSL"}, "CENTRALITA_KAFKA_SASL_USERNAME"),
    ({"kafka_security_protocol": "SASL_SSL", "kafka_sasl_username": "u", "kafka_sasl_mechanism": "GSSAPI"},
     "CENTRALITA_KAFKA_SASL_MECHANISM"),
])
def test_inconsistent_settings_are_named(overrides: dict, fragment: str) -> None:
    with pytest.raises(KafkaSecurityError, match=fragment):
        security_config(Settings(kafka_sasl_password="never-in-the-message", **overrides))
    try:
        security_config(Settings(kafka_sasl_password="never-in-the-message", **overrides))
    except KafkaSecurityError as exc:
        assert "never-in-the-message" not in str(exc)
