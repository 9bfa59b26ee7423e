"""Typed settings for every Centralita process, read from ``CENTRALITA_*`` environment variables.

One frozen settings object per process. The defaults run the local stack started by
``centralita stack up``, so nothing has to be configured on a developer machine.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The checkout this package lives in (editable install): home of `triton_models/`, `tests/bench/`, ...
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Configuration of one process. Every field maps to ``CENTRALITA_<FIELD>`` (case-insensitive)."""

    model_config = SettingsConfigDict(env_prefix="CENTRALITA_", frozen=True, extra="ignore")

    kafka_bootstrap: str = Field(
        "127.0.0.1:9092", description="Kafka bootstrap servers (host:port[,host:port])."
    )
    state_dir: Path = Field(
        PROJECT_ROOT / ".centralita",
        description="Where the local stack keeps its data, logs and pid files.",
    )
    cache_dir: Path = Field(
        Path.home() / ".cache" / "centralita",
        description="Downloads shared by every checkout (the Kafka broker jars).",
    )
    kafka_version: str = Field("4.1.1", description="Apache Kafka release the local broker runs.")
    kafka_port: int = Field(9092, description="Local broker's client port on 127.0.0.1.")
    kafka_controller_port: int = Field(9093, description="Local broker's KRaft controller port.")
    kafka_heap: str = Field("512m", description="JVM heap of the local broker (-Xmx).")
    kafka_start_timeout_s: float = Field(60.0, description="How long `stack up` waits for the broker.")
    app_id: str = Field("centralita", description="Faust application id (consumer group prefix).")
    broker_session_timeout_s: float = Field(
        30.0, description="Faust consumer session timeout; tests use a short one so groups join fast."
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
