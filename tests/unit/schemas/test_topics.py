"""The topic catalog is consistent: known schemas, dead-letter topics that exist, unique names."""

from __future__ import annotations

import pytest

from schemas.registry import default_registry
from schemas.topics import CATALOG, SOURCES, topic


def test_names_are_unique() -> None:
    names = [spec.name for spec in CATALOG]
    assert len(names) == len(set(names))


def test_every_schema_named_exists_and_every_schema_has_a_topic() -> None:
    known = {n.rsplit(".", 1)[1] for n in default_registry().names()}
    used = {spec.schema for spec in CATALOG if spec.schema}
    assert used <= known
    assert used == known


def test_every_processed_topic_has_a_dead_letter_topic_in_the_catalog() -> None:
    for spec in CATALOG:
        if spec.name.endswith(".dlq") or spec.name.endswith(".outbound") and spec.name.startswith("channel."):
            continue
        assert spec.dead_letter, spec.name
        assert topic(spec.dead_letter).name == f"{spec.name}.dlq"


def test_raw_topics_exist_for_every_source_and_carry_raw_bytes() -> None:
    for source in SOURCES:
        assert topic(f"channel.{source}.inbound.raw").schema is None
        assert topic(f"channel.{source}.outbound").partitions >= 1


def test_unknown_topic_is_a_clear_error() -> None:
    with pytest.raises(KeyError, match="'conversation.nope' is not in the topic catalog"):
        topic("conversation.nope")


def test_config_carries_cleanup_and_retention() -> None:
    config = topic("conversation.log").config()
    assert config["cleanup.policy"] == "delete" and int(config["retention.ms"]) > 0
