"""Dead letters: what cannot be processed goes to `<topic>.dlq`, unchanged, with the reason in headers.

Nothing is dropped: the original key and value are kept byte for byte, so the message can be replayed once
the cause is fixed. Headers say where it came from and why; reasons name codes and fields, never values.
"""

from __future__ import annotations

from typing import Sequence

from confluent_kafka import Producer

from schemas.topics import topic as catalog_topic

REASON = "centralita.dlq.reason"
DETAIL = "centralita.dlq.detail"
SOURCE = "centralita.dlq.source"
ORIGIN_TOPIC = "centralita.dlq.topic"
ORIGIN_PARTITION = "centralita.dlq.partition"
ORIGIN_OFFSET = "centralita.dlq.offset"


def dead_letter_headers(reason: str, detail: str, source: str, topic: str, partition: int, offset: int) -> list[tuple[str, bytes]]:
    return [
        (REASON, reason.encode()),
        (DETAIL, detail[:1000].encode()),
        (SOURCE, source.encode()),
        (ORIGIN_TOPIC, topic.encode()),
        (ORIGIN_PARTITION, str(partition).encode()),
        (ORIGIN_OFFSET, str(offset).encode()),
    ]


def headers_dict(headers: Sequence[tuple[str, bytes]] | None) -> dict[str, str]:
    """Headers of a consumed message as text, for tests and tools."""
    return {k: (v or b"").decode("utf-8", "replace") for k, v in (headers or [])}


def dead_letter_topic(topic: str) -> str:
    """Where messages of `topic` that cannot be processed go: the catalog's choice, else `<topic>.dlq`."""
    try:
        return catalog_topic(topic).dead_letter or f"{topic}.dlq"
    except KeyError:
        return f"{topic}.dlq"


def send_dead_letter(producer: Producer, topic: str, key: bytes | None, value: bytes | None, partition: int,
                     offset: int, reason: str, detail: str, source: str) -> None:
    """Queue the message on its topic's dead-letter topic; the caller flushes before committing offsets."""
    producer.produce(dead_letter_topic(topic), key=key, value=value,
                     headers=dead_letter_headers(reason, detail, source, topic, partition, offset))
