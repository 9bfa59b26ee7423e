"""The anonymization job on real Spark (local[2]): masks, pseudonyms, erasure, skips counted, report, CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from jobs.anonymize import AnonymizeError, run_job

KEY = b"test-key-0123456789abcdef"
ROWS = [
    {"message_id": "m1", "conversation_id": "conv-1", "customer_id": "+34612345678", "channel": "WHATSAPP",
     "sent_at": "2026-11-20T10:15:00Z", "text": "Hola, me llamo María López, mi email es maria.lopez@gmail.com",
     "intent": "greeting", "confidence": "0.93", "language": "es"},
    {"message_id": "m2", "conversation_id": "conv-1", "customer_id": "+34612345678", "channel": "WHATSAPP",
     "sent_at": "2026-11-20T10:16:40Z", "text": "mi tarjeta 4111 1111 1111 1111 y el pedido 12345678", "intent": "payment_failed"},
    {"message_id": "m3", "conversation_id": "conv-2", "customer_id": "erase-me", "channel": "SMS",
     "sent_at": "2026-11-21T09:00:00Z", "text": "call me at +44 20 7946 0958"},
    {"message_id": "m4", "conversation_id": "conv-3", "customer_id": "c3", "channel": "EMAIL", "sent_at": "2026-11-21T09:00:00Z"},
    {"message_id": "m5", "conversation_id": "conv-3", "customer_id": "c3", "channel": "EMAIL", "sent_at": "yesterday", "text": "hi"},
]


@pytest.fixture
def log_file(tmp_path: Path) -> Path:
    path = tmp_path / "in.jsonl"
    with open(path, "wb") as out:
        for row in ROWS:
            out.write(json.dumps(row, ensure_ascii=False).encode() + b"\n")
        out.write(b"not json at all\n\n")
        out.write(b'{"message_id": "m6", "conversation_id": "c", "customer_id": "x", "channel": "SMS", '
                  b'"sent_at": "2026-11-21T09:00:00Z", "text": "caf\xe9"}\n')
    return path


def test_masks_pseudonymizes_erases_and_reports(spark, log_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    report = run_job(spark, log_file, out, KEY, erase={"erase-me"})
    assert report.rows_in == 8 and report.rows_out == 2 and report.erased_rows == 1
    assert report.skipped == {"missing_text": 1, "malformed_json": 1, "empty_line": 1, "not_utf8": 1, "bad_sent_at": 1}
    assert report.rows_in == report.rows_out + report.erased_rows + sum(report.skipped.values())  # nothing silently lost
    assert report.pii_found == {"PERSON": 1, "EMAIL": 1, "CARD": 1}  # the erased row (a phone number) is not even scanned
    assert json.loads((out / "_report.json").read_text())["rows_out"] == 2
    rows = sorted((r.asDict() for r in spark.read.parquet(str(out)).collect()), key=lambda r: r["message_id"])
    assert [r["text"] for r in rows] == ["Hola, me llamo <PERSON>, mi email es <EMAIL>", "mi tarjeta <CARD> y el pedido 12345678"]
    assert rows[0]["customer"] == rows[1]["customer"] and len(rows[0]["customer"]) == 32
    assert "+34612345678" not in json.dumps(rows, default=str) and "conv-1" not in json.dumps(rows, default=str)
    assert str(rows[1]["sent_at"]).startswith("2026-11-20 10:00:00") and str(rows[0]["date"]) == "2026-11-20"
    assert rows[0]["confidence"] == pytest.approx(0.93) and rows[0]["intent"] == "greeting"
    assert {p.name for p in out.iterdir() if p.is_dir()} == {"date=2026-11-20"}

    again = run_job(spark, log_file, tmp_path / "again", KEY, erase={"erase-me"})
    assert again.rows_out == 2
    tokens = {r["customer"] for r in spark.read.parquet(str(tmp_path / "again")).collect()}
    assert tokens == {rows[0]["customer"]}  # same id, same key: same token across runs


def test_parquet_input_and_the_key_stays_out_of_plans(spark, tmp_path: Path) -> None:
    source = tmp_path / "log.parquet"
    spark.createDataFrame([{k: v for k, v in ROWS[0].items()}]).write.parquet(str(source / "part.parquet"))
    report = run_job(spark, source / "part.parquet", tmp_path / "out", KEY)
    assert report.rows_out == 1 and report.pii_found["EMAIL"] == 1
    plans = spark.read.parquet(str(tmp_path / "out"))._jdf.queryExecution().toString()
    assert KEY.decode() not in plans


def test_empty_and_missing_inputs_are_refused(spark, tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(AnonymizeError, match="is empty"):
        run_job(spark, empty, tmp_path / "o", KEY)
    with pytest.raises(AnonymizeError, match="does not exist"):
        run_job(spark, tmp_path / "nope.jsonl", tmp_path / "o", KEY)


def test_cli_runs_the_job_and_explains_a_missing_key(log_file: Path, tmp_path: Path) -> None:
    env = {**os.environ, "CENTRALITA_PSEUDONYM_KEY": KEY.decode()}
    ok = subprocess.run([sys.executable, "-m", "infra.cli", "anonymize", "--input", str(log_file), "--output",
                         str(tmp_path / "cli"), "--master", "local[2]"], env=env, capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["rows_out"] == 3 and "anonymize: stage" in ok.stderr  # progress shown
    assert KEY.decode() not in ok.stdout + ok.stderr and "maria.lopez" not in ok.stdout + ok.stderr
    env.pop("CENTRALITA_PSEUDONYM_KEY")
    refused = subprocess.run([sys.executable, "-m", "infra.cli", "anonymize", "--input", str(log_file), "--output",
                              str(tmp_path / "cli2")], env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "CENTRALITA_PSEUDONYM_KEY" in refused.stderr and "Traceback" not in refused.stderr
