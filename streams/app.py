"""The Faust application: one per worker process, configured from settings.

Processing guarantee is at-least-once (Faust's exactly-once is unreliable upstream); every effect carries a
deterministic id and is deduplicated where it lands.
"""

from __future__ import annotations

import faust

from infra.settings import Settings, get_settings


def create_app(settings: Settings) -> faust.App:
    datadir = settings.state_dir / "faust" / settings.app_id
    datadir.parent.mkdir(parents=True, exist_ok=True)
    return faust.App(
        settings.app_id,
        broker=[f"kafka://{server}" for server in settings.kafka_bootstrap.split(",")],
        store=settings.store,
        processing_guarantee="at_least_once",
        broker_session_timeout=settings.broker_session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.broker_session_timeout_s / 5),
        web_bind="127.0.0.1",
        web_port=settings.worker_web_port,
        web_host="127.0.0.1",
        datadir=str(datadir),
        topic_disable_leader=True,
        consumer_auto_offset_reset=settings.auto_offset_reset,
        producer_acks=-1,
        key_serializer="raw",
        value_serializer="raw",
    )


app = create_app(get_settings())

# Agents register themselves on `app` when imported.
from streams import engine, metrics, normalize, outbound  # noqa: E402,F401
