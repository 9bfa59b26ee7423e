"""`centralita normalize SOURCE FILE`: JSON lines out, nothing for ignored events, exit 2 with the reason."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from infra.cli import main

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "channels"


def test_prints_one_json_object_per_canonical_message() -> None:
    result = CliRunner().invoke(main, ["normalize", "whatsapp", str(FIXTURES / "whatsapp" / "batch_interactive_media_location.json")])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert len(lines) == 5
    for line in lines:
        assert {"channel", "channel_message_id", "sender_id", "text", "attachments"} <= set(line)
    assert lines[0]["sent_at"] == "2025-06-08T21:00:00+00:00"


def test_ignored_event_prints_nothing() -> None:
    result = CliRunner().invoke(main, ["normalize", "messenger", str(FIXTURES / "messenger" / "echo_delivery_read.json")])
    assert result.exit_code == 0 and result.output == ""


def test_invalid_payload_exits_2_with_the_reason_on_stderr(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'{"object": "page", "entry": [{"messaging": [{"sender": {}}]}]}')
    result = CliRunner().invoke(main, ["normalize", "messenger", str(bad)])
    assert result.exit_code == 2
    assert "invalid messenger payload: missing field entry[0].messaging[0].sender.id" in result.stderr
    assert result.stdout == ""


def test_stdin_and_unknown_source() -> None:
    body = (FIXTURES / "webchat" / "message.json").read_bytes()
    result = CliRunner().invoke(main, ["normalize", "webchat", "-"], input=body)
    assert result.exit_code == 0 and json.loads(result.output)["text"] == "can I change the delivery address?"
    assert CliRunner().invoke(main, ["normalize", "telegram", "-"], input=b"{}").exit_code == 2
