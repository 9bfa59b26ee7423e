"""Per-component Kafka access: least privilege, derived from what each component's code uses."""

from __future__ import annotations

from confluent_kafka.admin import AclOperation, ResourcePatternType, ResourceType

from infra.kafka_acls import acl_bindings, component_access, strimzi_kafka_user
from infra.settings import Settings
from schemas.topics import BY_NAME


def access(name: str):
    return {a.component: a for a in component_access(Settings())}[name]


def test_every_literal_topic_is_in_the_catalog_or_a_changelog() -> None:
    for item in component_access(Settings()):
        for topic in (*item.reads, *item.writes):
            assert topic in BY_NAME or topic.endswith("-changelog"), (item.component, topic)


def test_gateway_writes_raw_topics_only() -> None:
    gateway = access("centralita-gateway")
    assert set(gateway.writes) == {n for n in BY_NAME if n.endswith(".inbound.raw")}
    bindings = acl_bindings(gateway)
    writes = {b.name for b in bindings if b.operation == AclOperation.WRITE}
    assert writes == set(gateway.writes)
    assert all(b.permission_type.name == "ALLOW" and b.principal == "User:centralita-gateway" for b in bindings)
    assert not any(b.operation == AclOperation.ALL for b in bindings)


def test_only_the_worker_writes_case_events_and_owns_its_changelogs() -> None:
    writers = {a.component for a in component_access(Settings()) if "crm.case-events" in a.writes}
    assert writers == {"centralita-worker"}
    owned = [b for b in acl_bindings(access("centralita-worker")) if b.resource_pattern_type == ResourcePatternType.PREFIXED
             and b.restype == ResourceType.TOPIC]
    assert [(b.name, b.operation) for b in owned] == [("centralita-", AclOperation.ALL)]


def test_crm_sink_reads_case_events_with_its_group() -> None:
    bindings = acl_bindings(access("centralita-crm-sink"))
    assert {(b.restype, b.name, b.operation) for b in bindings} == {
        (ResourceType.TOPIC, "crm.case-events", AclOperation.READ),
        (ResourceType.TOPIC, "crm.case-events", AclOperation.DESCRIBE),
        (ResourceType.TOPIC, "crm.case-events.dlq", AclOperation.WRITE),
        (ResourceType.TOPIC, "crm.case-events.dlq", AclOperation.DESCRIBE),
        (ResourceType.GROUP, "centralita-crm-sink", AclOperation.READ),
    }


def test_strimzi_user_carries_the_same_acls() -> None:
    sink = strimzi_kafka_user(access("centralita-crm-sink"), "centralita", "centralita")
    assert sink["kind"] == "KafkaUser" and sink["metadata"]["labels"] == {"strimzi.io/cluster": "centralita"}
    assert sink["spec"]["authentication"] == {"type": "scram-sha-512"}
    rules = {(r["resource"]["type"], r["resource"]["name"], tuple(r["operations"])) for r in sink["spec"]["authorization"]["acls"]}
    assert rules == {("topic", "crm.case-events", ("Read", "Describe")), ("topic", "crm.case-events.dlq", ("Write", "Describe")),
                     ("group", "centralita-crm-sink", ("Read",))}
    worker = strimzi_kafka_user(access("centralita-worker"), "centralita", "centralita")
    both = [r for r in worker["spec"]["authorization"]["acls"] if r["resource"]["name"] == "channel.whatsapp.inbound.raw"]
    assert both == [{"resource": {"type": "topic", "name": "channel.whatsapp.inbound.raw", "patternType": "literal"},
                     "operations": ["Read", "Write", "Describe"], "host": "*"}]  # read, and written by a forward
