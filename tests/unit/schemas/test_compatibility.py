"""`centralita schemas check`: shipped schemas pass; a breaking change fails with a clear reason."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from infra.cli import main
from schemas.compatibility import check_registry, release_changed
from schemas.registry import SCHEMAS_DIR, SchemaRegistry


@pytest.fixture
def schema_copy(tmp_path: Path) -> Path:
    shutil.copytree(SCHEMAS_DIR / "avro", tmp_path / "avro")
    shutil.copytree(SCHEMAS_DIR / "released", tmp_path / "released")
    return tmp_path


def _edit(root: Path, stem: str, change) -> None:
    path = root / "avro" / f"{stem}.avsc"
    schema = json.loads(path.read_text())
    change(schema)
    path.write_text(json.dumps(schema))


def test_shipped_schemas_are_compatible_with_their_releases() -> None:
    result = CliRunner().invoke(main, ["schemas", "check"])
    assert result.exit_code == 0, result.output
    assert "7 schemas compatible" in result.output


def test_new_required_field_is_a_breaking_change(schema_copy: Path) -> None:
    _edit(schema_copy, "case_event", lambda s: s["fields"].append({"name": "region", "type": "string", "doc": "r"}))
    result = CliRunner().invoke(main, ["schemas", "check", "--schemas-dir", str(schema_copy)])
    assert result.exit_code == 1
    assert "breaking   CaseEvent (against v1)" in result.output
    assert "reader_field_missing_default_value" in result.output
    assert "error: breaking schema change in CaseEvent" in result.output


def test_removed_enum_symbol_is_a_breaking_change(schema_copy: Path) -> None:
    def drop_sms(schema):
        channel = next(f for f in schema["fields"] if f["name"] == "channel")
        channel["type"]["symbols"].remove("SMS")

    _edit(schema_copy, "inbound_message", drop_sms)
    reports = {r.name: r for r in check_registry(SchemaRegistry(schema_copy / "avro", schema_copy / "released"))}
    assert reports["InboundMessage"].status == "breaking"
    assert reports["OutboundMessage"].status == "unchanged"


def test_optional_field_with_default_is_compatible_and_can_be_released(schema_copy: Path) -> None:
    _edit(schema_copy, "case_event", lambda s: s["fields"].append(
        {"name": "region", "type": ["null", "string"], "default": None, "doc": "r"}))
    registry = SchemaRegistry(schema_copy / "avro", schema_copy / "released")
    reports = {r.name: r for r in check_registry(registry)}
    assert reports["CaseEvent"].status == "compatible"
    written = release_changed(registry)
    assert written == [str(schema_copy / "released" / "case_event" / "2.avsc")]
    after = {r.name: r for r in check_registry(SchemaRegistry(schema_copy / "avro", schema_copy / "released"))}
    assert after["CaseEvent"].status == "unchanged" and after["CaseEvent"].against_version == 2


def test_release_refuses_a_breaking_change(schema_copy: Path) -> None:
    _edit(schema_copy, "case_event", lambda s: s["fields"].append({"name": "region", "type": "string", "doc": "r"}))
    with pytest.raises(ValueError, match="breaking change in CaseEvent"):
        release_changed(SchemaRegistry(schema_copy / "avro", schema_copy / "released"))
