"""The topic catalog: every Kafka topic Centralita owns, with its layout, retention, schema and dead letters.

This is the single list that `centralita topics create`, the tests, and (later) the Kubernetes KafkaTopic
resources are made from. Raw channel topics carry provider payloads as received (bytes + headers), so they
have no Avro schema; every other topic carries single-object Avro of the schema named here.
"""

from __future__ import annotations

from dataclasses import dataclass

DAY_MS = 24 * 60 * 60 * 1000

#: Integrations that publish raw provider payloads (the `<source>` in channel.<source>.inbound.raw).
SOURCES = ("webchat", "whatsapp", "twilio", "messenger", "instagram", "email")


@dataclass(frozen=True)
class TopicSpec:
    """One topic: how it is laid out and what it carries."""

    name: str
    partitions: int
    retention_ms: int  # -1 keeps forever (compacted topics)
    schema: str | None  # short Avro schema name, None for raw bytes
    key: str  # what the message key is, for readers of the catalog
    cleanup_policy: str = "delete"
    dead_letter: str | None = None  # where messages that cannot be processed go, with the reason in headers
    description: str = ""
    extra_config: tuple[tuple[str, str], ...] = ()  # further topic-level settings (compaction pace of changelogs)

    def config(self) -> dict[str, str]:
        """Topic-level broker configuration."""
        return {"cleanup.policy": self.cleanup_policy, "retention.ms": str(self.retention_ms), **dict(self.extra_config)}


def _dlq(spec: TopicSpec) -> TopicSpec:
    """The dead-letter topic of `spec`: same key, kept longer, raw bytes (whatever could not be processed)."""
    return TopicSpec(
        name=f"{spec.name}.dlq",
        partitions=1,
        retention_ms=30 * DAY_MS,
        schema=None,
        key=spec.key,
        description=f"Messages of {spec.name} that could not be processed; reason in headers.",
    )


def _with_dlq(spec: TopicSpec) -> tuple[TopicSpec, TopicSpec]:
    dlq = _dlq(spec)
    return TopicSpec(**{**spec.__dict__, "dead_letter": dlq.name}), dlq


#: Partition count of every topic when a deployment does not choose its own (CENTRALITA_PARTITIONS). One count for
#: all: the stream worker decides a raw record on the partition it reads it from, with that partition's state, so
#: raw, conversation and case topics and the worker's tables are co-partitioned.
PARTITIONS = 6


def catalog(partitions: int = PARTITIONS) -> tuple[TopicSpec, ...]:
    """Every topic, with `partitions` partitions each (dead-letter topics: one)."""
    if partitions < 1:
        raise ValueError("the partition count must be at least 1")
    raw = conv = partitions
    specs: list[TopicSpec] = []
    for source in SOURCES:
        specs += _with_dlq(TopicSpec(
            f"channel.{source}.inbound.raw", raw, 7 * DAY_MS, None, "conversation_id (any key, or none, is accepted)",
            description=f"Raw {source} webhook bodies and headers, as received.",
        ))
        specs.append(TopicSpec(
            f"channel.{source}.outbound", raw, 7 * DAY_MS, None, "conversation_id",
            description=f"Replies formatted for {source}'s limits, for the integration to deliver.",
        ))
    specs += _with_dlq(TopicSpec("conversation.inbound", conv, 7 * DAY_MS, "InboundMessage", "conversation_id",
                                 description="Canonical customer messages, once each, in order per conversation: "
                                             "written by the engine as it decides them (for its readers' dead letters: "
                                             "the .dlq)."))
    specs += _with_dlq(TopicSpec("conversation.outbound", conv, 7 * DAY_MS, "OutboundMessage", "conversation_id",
                                 description="Replies to customers, before channel formatting."))
    specs += _with_dlq(TopicSpec("conversation.agent", conv, 7 * DAY_MS, "OutboundMessage", "conversation_id",
                                 description="Messages human agents write, sent out through the outbound path."))
    specs += _with_dlq(TopicSpec("conversation.handoff", conv, 30 * DAY_MS, "HandoffEvent", "conversation_id",
                                 description="Handoff lifecycle: requested, accepted, released, completed."))
    specs += _with_dlq(TopicSpec("conversation.timer", conv, 1 * DAY_MS, "SessionTimer", "conversation_id",
                                 description="Session timers that fell due (an idle session to close), so that "
                                             "closing is an input like any other: replayed, never lost."))
    specs += _with_dlq(TopicSpec("conversation.session", conv, 30 * DAY_MS, "SessionEvent", "conversation_id",
                                 description="Session opened, resumed, switched channel, closed, CSAT."))
    specs += _with_dlq(TopicSpec("conversation.log", conv, 30 * DAY_MS, "ConversationTurn", "conversation_id",
                                 description="Every turn with its inference results: input of the anonymization job."))
    specs += _with_dlq(TopicSpec("crm.case-events", conv, 30 * DAY_MS, "CaseEvent", "case_id",
                                 description="Case created/updated/closed, streamed to the CRM."))
    return tuple(specs)


CATALOG: tuple[TopicSpec, ...] = catalog()
BY_NAME: dict[str, TopicSpec] = {spec.name: spec for spec in CATALOG}


def topic(name: str) -> TopicSpec:
    """A catalog entry by name (default partition counts); KeyError names the unknown topic."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"{name!r} is not in the topic catalog") from None
