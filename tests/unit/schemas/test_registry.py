"""The schema files themselves: the conventions every topic contract follows, and the typed records."""

from __future__ import annotations

import json

import pytest

from schemas.records import RECORD_TYPES
from schemas.registry import CURRENT_DIR, SchemaFileError, SchemaRegistry, default_registry, load_schema_file

REQUIRED = {"InboundMessage", "OutboundMessage", "ConversationTurn", "SessionEvent", "HandoffEvent", "CaseEvent"}


def _walk(schema, visit):
    if isinstance(schema, list):
        for branch in schema:
            _walk(branch, visit)
    elif isinstance(schema, dict):
        visit(schema)
        for f in schema.get("fields", []):
            visit_field = {"__field__": f}
            visit(visit_field)
            _walk(f["type"], visit)
        if "items" in schema:
            _walk(schema["items"], visit)
        if "values" in schema:
            _walk(schema["values"], visit)


def test_the_required_schemas_exist_in_one_namespace() -> None:
    names = default_registry().names()
    assert {n.rsplit(".", 1)[1] for n in names} >= REQUIRED
    assert {n.rsplit(".", 1)[0] for n in names} == {"io.centralita"}


@pytest.mark.parametrize("path", sorted(CURRENT_DIR.glob("*.avsc")), ids=lambda p: p.stem)
def test_every_field_and_type_is_documented(path) -> None:
    undocumented = []

    def visit(node):
        if "__field__" in node:
            if not node["__field__"].get("doc", "").strip():
                undocumented.append(node["__field__"]["name"])
        elif node.get("type") in ("record", "enum") and not node.get("doc", "").strip():
            undocumented.append(node["name"])

    _walk(json.loads(path.read_text()), visit)
    assert undocumented == []


@pytest.mark.parametrize("path", sorted(CURRENT_DIR.glob("*.avsc")), ids=lambda p: p.stem)
def test_timestamps_are_logical_types_and_channel_is_an_enum(path) -> None:
    fields = {f["name"]: f["type"] for f in json.loads(path.read_text())["fields"]}
    time_fields = [n for n in fields if n.endswith("_at")]
    assert time_fields, "every topic record carries a timestamp"
    for name in time_fields:
        assert fields[name] == {"type": "long", "logicalType": "timestamp-millis"}, name
    channel = fields["channel"]
    assert channel == "Channel" or channel["type"] == "enum"


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_typed_record_has_exactly_the_schema_fields(name: str) -> None:
    schema = default_registry().current(name)
    record_fields = RECORD_TYPES[name]._options.fieldpos.values()
    optional_in_schema = {f["name"] for f in schema.parsed["fields"] if "default" in f}
    defaults = RECORD_TYPES[name]._options.defaults
    assert set(record_fields) == {f["name"] for f in schema.parsed["fields"]}
    assert set(defaults) == optional_in_schema


def test_released_versions_are_kept_for_every_schema() -> None:
    registry = default_registry()
    for name in registry.names():
        assert registry.released(name), f"{name} has no released version"


def test_a_broken_schema_file_is_reported_with_its_path(tmp_path) -> None:
    bad = tmp_path / "avro"
    bad.mkdir()
    (bad / "broken.avsc").write_text('{"type": "record", "name": "X", "fields": [{"name": "a", "type": "strnig"}]}')
    with pytest.raises(SchemaFileError, match="broken.avsc: not a valid Avro schema"):
        SchemaRegistry(bad, tmp_path / "none")
    (bad / "broken.avsc").write_text("{not json")
    with pytest.raises(SchemaFileError, match="not readable JSON"):
        load_schema_file(bad / "broken.avsc")
