"""`centralita classify`: one JSON object per input line, through the same model code Triton serves."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def run(args: list[str], stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "infra.cli", "classify", *args], input=stdin, capture_output=True, timeout=300)


def test_classify_a_file_and_stdin(tmp_path: Path) -> None:
    texts = ["¿Dónde está mi pedido 4711-ES?", "I want to cancel order #99812", "", "🙂", "quiero hablar con una persona"]
    path = tmp_path / "texts.txt"
    path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    result = run([str(path)])
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert [r["intent"] for r in rows] == ["order_status", "cancel_order", None, None, "human_agent"]
    assert rows[0]["entities"] == [{"label": "order_number", "value": "4711-ES", "start": 22, "end": 29}]
    assert set(rows[0]) >= {"intent", "confidence", "sentiment", "entities", "language"}
    piped = run([], stdin=path.read_bytes())
    assert piped.returncode == 0 and piped.stdout == result.stdout


def test_a_file_that_is_not_utf8_is_refused_with_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes("hola\ncafé con leche\n".encode("latin-1"))
    result = run([str(path)])
    assert result.returncode == 2 and b"latin1.txt:2: not UTF-8" in result.stderr and b"Traceback" not in result.stderr


def test_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    result = run([str(tmp_path / "nope.txt")])
    assert result.returncode == 2 and b"nope.txt" in result.stderr
