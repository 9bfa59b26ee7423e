"""Who may read and write which topic: one access list per component, applied as Kafka ACLs.

A component authenticates as its own SASL user (`CENTRALITA_KAFKA_SASL_USERNAME`), and its ACLs allow
exactly the topics it owns: the gateway writes raw channel topics and nothing else, the CRM sink reads case
events and writes their dead letters, and so on. The same list becomes the ACLs of a broker we run
(`centralita kafka acls --apply`, the security integration test) and the `KafkaUser` resources Strimzi
reconciles in Kubernetes (`infra/k8s`), so the two cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from infra.settings import Settings
from schemas.topics import SOURCES

#: The consumer group prefix Spark's Kafka source is told to use (`groupIdPrefix`) when it reads the log.
ANONYMIZER_GROUP = "centralita-anonymize"
AUDIT_GROUP = "centralita-audit"


@dataclass(frozen=True)
class Access:
    """What one component may do. Topic names are literal; `owned_prefixes` are topics the component creates and
    owns entirely (Faust's changelogs); `groups` are consumer group prefixes."""

    component: str
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    owned_prefixes: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    describes: tuple[str, ...] = ()  # topics whose offsets it reads without consuming (lag)
    describes_groups: tuple[str, ...] = ()  # consumer group prefixes whose committed offsets it reads
    description: str = ""

    @property
    def principal(self) -> str:
        return f"User:{self.component}"


def raw_topics() -> tuple[str, ...]:
    return tuple(f"channel.{source}.inbound.raw" for source in SOURCES)


def channel_outbound_topics() -> tuple[str, ...]:
    return tuple(f"channel.{source}.outbound" for source in SOURCES)


def component_access(settings: Settings) -> tuple[Access, ...]:
    """Every component's access, from what its code reads and writes."""
    app = settings.app_id
    conversation = ("conversation.inbound", "conversation.outbound", "conversation.agent", "conversation.handoff",
                    "conversation.timer")
    engine_inputs = ("conversation.handoff", "conversation.agent", "conversation.timer")
    changelogs = (f"{app}-sessions-changelog", f"{app}-identities-changelog", f"{app}-inbound-message-ids-changelog")
    return (
        Access("centralita-gateway", reads=("channel.webchat.outbound",), writes=raw_topics(),
               groups=(f"{app}-gateway-",),
               description="webhooks in (raw topics); follows web chat replies for open browser tabs"),
        Access("centralita-worker",
               reads=(*raw_topics(), *engine_inputs),
               writes=(*raw_topics(), *conversation, "conversation.session", "conversation.log", "crm.case-events",
                       *channel_outbound_topics(), *(f"{t}.dlq" for t in (*raw_topics(), *engine_inputs))),
               owned_prefixes=(f"{app}-",), groups=(app,),
               description="Faust worker: the conversation engine (normalizes raw records, moving a record to its "
                           "conversation's partition; sessions, timers, replies formatted per channel); owns its changelogs"),
        Access("centralita-crm-sink", reads=("crm.case-events",), writes=("crm.case-events.dlq",),
               groups=(settings.crm_group_id,), description="case events into the CRM"),
        Access("centralita-anonymizer", reads=("conversation.log",), groups=(ANONYMIZER_GROUP,),
               description="Spark anonymization job (reads the conversation log by offsets)"),
        Access("centralita-subject-requests",
               reads=("conversation.inbound", "conversation.outbound", "conversation.log", "conversation.session",
                      "conversation.handoff", "crm.case-events", *changelogs),
               writes=changelogs, groups=(AUDIT_GROUP,),
               description="erase/export and the effects audit: reads what is held, tombstones changelog keys"),
        Access("channel-integrations", reads=channel_outbound_topics(), writes=raw_topics(), groups=("integrations",),
               description="messaging integrations: publish raw events, deliver formatted replies"),
        Access("centralita-autoscaler", describes=(*raw_topics(), *conversation), describes_groups=(app,),
               description="KEDA's Kafka scaler: reads the workers' lag to scale them"),
        Access("agent-desk", reads=("conversation.handoff", "conversation.session"),
               writes=("conversation.handoff", "conversation.agent"), groups=("agent-desk",),
               description="the human agents' desk: accepts handoffs, writes agent messages"),
    )


def acl_bindings(access: Access) -> list:
    """confluent-kafka AclBindings that allow exactly `access` (Kafka denies whatever no ACL allows)."""
    from confluent_kafka.admin import AclBinding, AclOperation, AclPermissionType, ResourcePatternType, ResourceType

    def allow(resource: ResourceType, name: str, pattern: ResourcePatternType, operation: AclOperation) -> AclBinding:
        return AclBinding(resource, name, pattern, access.principal, "*", operation, AclPermissionType.ALLOW)

    literal, prefixed = ResourcePatternType.LITERAL, ResourcePatternType.PREFIXED
    bindings = []
    for topic in access.reads:
        bindings += [allow(ResourceType.TOPIC, topic, literal, AclOperation.READ),
                     allow(ResourceType.TOPIC, topic, literal, AclOperation.DESCRIBE)]
    for topic in access.writes:
        bindings += [allow(ResourceType.TOPIC, topic, literal, AclOperation.WRITE),
                     allow(ResourceType.TOPIC, topic, literal, AclOperation.DESCRIBE)]
    for prefix in access.owned_prefixes:
        bindings.append(allow(ResourceType.TOPIC, prefix, prefixed, AclOperation.ALL))
    for group in access.groups:
        bindings.append(allow(ResourceType.GROUP, group, prefixed, AclOperation.READ))
    for topic in access.describes:
        bindings.append(allow(ResourceType.TOPIC, topic, literal, AclOperation.DESCRIBE))
    for group in access.describes_groups:
        bindings.append(allow(ResourceType.GROUP, group, prefixed, AclOperation.DESCRIBE))
    return list(dict.fromkeys(bindings))  # a topic both read and written gets DESCRIBE once


def apply_acls(admin, accesses: tuple[Access, ...], timeout_s: float = 30.0) -> int:
    """Create the ACLs of every access on the cluster `admin` talks to (idempotent); returns how many."""
    bindings = [binding for access in accesses for binding in acl_bindings(access)]
    for future in admin.create_acls(bindings, request_timeout=timeout_s).values():
        future.result()
    return len(bindings)


def strimzi_kafka_user(access: Access, cluster: str, namespace: str) -> dict:
    """The Strimzi `KafkaUser` of a component: a SCRAM-SHA-512 user with exactly these ACLs."""

    def rule(resource_type: str, name: str, pattern: str, operations: list[str]) -> dict:
        return {"resource": {"type": resource_type, "name": name, "patternType": pattern},
                "operations": operations, "host": "*"}

    read_write = set(access.reads) & set(access.writes)
    acls = [rule("topic", t, "literal", ["Read", "Write", "Describe"]) for t in access.reads if t in read_write]
    acls += [rule("topic", t, "literal", ["Read", "Describe"]) for t in access.reads if t not in read_write]
    acls += [rule("topic", t, "literal", ["Write", "Describe"]) for t in access.writes if t not in read_write]
    acls += [rule("topic", p, "prefix", ["All"]) for p in access.owned_prefixes]
    acls += [rule("group", g, "prefix", ["Read"]) for g in access.groups]
    acls += [rule("topic", t, "literal", ["Describe"]) for t in access.describes]
    acls += [rule("group", g, "prefix", ["Describe"]) for g in access.describes_groups]
    return {"apiVersion": "kafka.strimzi.io/v1beta2", "kind": "KafkaUser",
            "metadata": {"name": access.component, "namespace": namespace, "labels": {"strimzi.io/cluster": cluster},
                         "annotations": {"centralita.io/description": access.description}},
            "spec": {"authentication": {"type": "scram-sha-512"},
                     "authorization": {"type": "simple", "acls": acls}}}


def upsert_scram_users(admin, passwords: dict[str, str], mechanism: str = "SCRAM-SHA-512",
                       timeout_s: float = 30.0) -> None:
    """Create or change the SCRAM credentials of users (on a cluster Strimzi does not manage)."""
    from confluent_kafka.admin import ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion

    kind = ScramMechanism.SCRAM_SHA_512 if mechanism == "SCRAM-SHA-512" else ScramMechanism.SCRAM_SHA_256
    upserts = [UserScramCredentialUpsertion(user, ScramCredentialInfo(kind, 8192), password.encode())
               for user, password in passwords.items()]
    for future in admin.alter_user_scram_credentials(upserts, request_timeout=timeout_s).values():
        future.result()
