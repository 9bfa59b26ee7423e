"""Settings come from CENTRALITA_* variables, typed, with defaults that run the local stack."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from infra.settings import Settings


def test_defaults_point_at_the_local_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CENTRALITA_KAFKA_BOOTSTRAP", "CENTRALITA_KAFKA_PORT"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.kafka_bootstrap == "127.0.0.1:9092" and settings.kafka_port == 9092


def test_environment_overrides_and_types_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CENTRALITA_KAFKA_PORT", "19092")
    assert Settings().kafka_port == 19092
    monkeypatch.setenv("CENTRALITA_KAFKA_PORT", "not-a-port")
    with pytest.raises(ValidationError, match="kafka_port"):
        Settings()


def test_settings_are_frozen() -> None:
    with pytest.raises(ValidationError):
        Settings().kafka_port = 1  # type: ignore[misc]
