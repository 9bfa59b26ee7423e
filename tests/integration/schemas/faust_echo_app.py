"""A Faust app for the round-trip test: one agent per schema reads typed records and writes them back.

Run as a real worker process: `python faust_echo_app.py worker`. Configuration comes from the environment
(ECHO_APP_ID, ECHO_TOPIC_PREFIX, ECHO_DATADIR and the usual CENTRALITA_* settings).
"""

from __future__ import annotations

import os

import faust

from infra.settings import get_settings
from schemas.faust_codec import codec_for
from schemas.records import RECORD_TYPES

settings = get_settings()
prefix = os.environ["ECHO_TOPIC_PREFIX"]
app = faust.App(
    os.environ["ECHO_APP_ID"],
    broker=f"kafka://{settings.kafka_bootstrap}",
    broker_session_timeout=settings.broker_session_timeout_s,
    broker_heartbeat_interval=1.0,
    web_enabled=False,
    topic_partitions=1,
    datadir=os.environ["ECHO_DATADIR"],
    store="memory://",
)


def make_echo(record_type: type, out: faust.TopicT):
    async def echo(stream):
        async for key, value in stream.items():
            if not isinstance(value, record_type):
                raise TypeError(f"agent got {type(value).__name__}, expected {record_type.__name__}")
            await out.send(key=key, value=value)
    return echo


for name, record_type in RECORD_TYPES.items():
    codec = codec_for(name)
    source = app.topic(f"{prefix}.{name}.in", key_type=bytes, value_type=record_type, value_serializer=codec)
    sink = app.topic(f"{prefix}.{name}.out", key_type=bytes, value_type=record_type, value_serializer=codec)
    app.agent(source, name=f"echo_{name}")(make_echo(record_type, sink))

if __name__ == "__main__":
    app.main()
