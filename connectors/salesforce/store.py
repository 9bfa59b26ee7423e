"""SQLite persistence of the Salesforce emulator: sessions, Bulk API jobs, batches, results, and Case records.

One connection, used from the emulator's event loop only. Records survive an emulator restart, so a test can
restart the emulator (or the sink) and still count what was written.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import string
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from connectors.salesforce.case_object import DATA_FIELDS, EXTERNAL_ID, RecordError, missing_required, normalize

_ALPHABET = string.ascii_letters + string.digits

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS sessions (token TEXT PRIMARY KEY, subject TEXT NOT NULL, expires_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, object TEXT NOT NULL, operation TEXT NOT NULL, external_id TEXT,
    content_type TEXT NOT NULL, concurrency TEXT NOT NULL, state TEXT NOT NULL,
    created REAL NOT NULL, modified REAL NOT NULL, created_by TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS batches (
    id TEXT PRIMARY KEY, job_id TEXT NOT NULL, state TEXT NOT NULL, state_message TEXT,
    body BLOB NOT NULL, processed INTEGER NOT NULL DEFAULT 0, failed INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL, modified REAL NOT NULL, results TEXT);
CREATE TABLE IF NOT EXISTS cases (
    Id TEXT PRIMARY KEY, {", ".join(f'"{f}" TEXT' for f in DATA_FIELDS if f != EXTERNAL_ID)},
    "{EXTERNAL_ID}" TEXT UNIQUE, CreatedDate TEXT NOT NULL, LastModifiedDate TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


def sf_id(prefix: str) -> str:
    """An 18-character Salesforce-style id with the object's key prefix (500 Case, 750 job, 751 batch)."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(15))


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


class Store:
    def __init__(self, path: Path | str) -> None:
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)

    # -- sessions ------------------------------------------------------------------------------------

    def create_session(self, subject: str, ttl_s: float) -> str:
        token = "00D" + secrets.token_urlsafe(32)
        self.db.execute("INSERT INTO sessions VALUES (?, ?, ?)", (token, subject, time.time() + ttl_s))
        return token

    def session_valid(self, token: str | None) -> bool:
        if not token:
            return False
        row = self.db.execute("SELECT expires_at FROM sessions WHERE token = ?", (token,)).fetchone()
        return row is not None and row["expires_at"] > time.time()

    def expire_sessions(self) -> None:
        self.db.execute("UPDATE sessions SET expires_at = 0")

    # -- counters ------------------------------------------------------------------------------------

    def bump(self, name: str, by: int = 1) -> int:
        self.db.execute("INSERT INTO counters VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = value + ?",
                        (name, by, by))
        return self.counter(name)

    def counter(self, name: str) -> int:
        row = self.db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return int(row["value"]) if row else 0

    def reset_counters(self) -> None:
        self.db.execute("DELETE FROM counters")

    # -- jobs and batches ----------------------------------------------------------------------------

    def create_job(self, obj: str, operation: str, external_id: str | None, content_type: str,
                   concurrency: str, created_by: str) -> dict[str, Any]:
        job_id, now = sf_id("750"), time.time()
        self.db.execute("INSERT INTO jobs VALUES (?, ?, ?, ?, ?, ?, 'Open', ?, ?, ?)",
                        (job_id, obj, operation, external_id, content_type, concurrency, now, now, created_by))
        return self.job(job_id)  # type: ignore[return-value]

    def job(self, job_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return dict(row) if row else None

    def set_job_state(self, job_id: str, state: str) -> None:
        self.db.execute("UPDATE jobs SET state = ?, modified = ? WHERE id = ?", (state, time.time(), job_id))

    def job_counts(self, job_id: str) -> dict[str, int]:
        rows = self.db.execute("SELECT state, COUNT(*) n, SUM(processed) p, SUM(failed) f FROM batches "
                               "WHERE job_id = ? GROUP BY state", (job_id,)).fetchall()
        counts = {"Queued": 0, "InProgress": 0, "Completed": 0, "Failed": 0, "NotProcessed": 0}
        processed = failed = 0
        for row in rows:
            counts[row["state"]] = row["n"]
            processed += row["p"] or 0
            failed += row["f"] or 0
        return {**counts, "total": sum(counts.values()), "processed": processed, "failed": failed}

    def create_batch(self, job_id: str, body: bytes, state: str = "Queued", message: str | None = None) -> dict[str, Any]:
        batch_id, now = sf_id("751"), time.time()
        self.db.execute("INSERT INTO batches (id, job_id, state, state_message, body, created, modified) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)", (batch_id, job_id, state, message, body, now, now))
        return self.batch(batch_id)  # type: ignore[return-value]

    def batch(self, batch_id: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT * FROM batches WHERE id = ?", (batch_id,)).fetchone()
        return dict(row) if row else None

    def batches(self, job_id: str) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.execute("SELECT * FROM batches WHERE job_id = ? ORDER BY created", (job_id,))]

    def pending_batches(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.execute("SELECT * FROM batches WHERE state IN ('Queued', 'InProgress')")]

    def set_batch_state(self, batch_id: str, state: str, message: str | None = None) -> None:
        self.db.execute("UPDATE batches SET state = ?, state_message = ?, modified = ? WHERE id = ?",
                        (state, message, time.time(), batch_id))

    def finish_batch(self, batch_id: str, results: list[dict[str, Any]]) -> None:
        failed = sum(1 for r in results if r.get("success") is False)  # query rows have no "success"
        self.db.execute("UPDATE batches SET state = 'Completed', processed = ?, failed = ?, results = ?, modified = ? "
                        "WHERE id = ?", (len(results), failed, json.dumps(results), time.time(), batch_id))

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One commit for a whole batch (also far faster than a commit per record)."""
        self.db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- Case records --------------------------------------------------------------------------------

    def case_count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM cases").fetchone()[0])

    def case_by(self, field: str, value: str) -> dict[str, Any] | None:
        if field not in ("Id", EXTERNAL_ID):
            raise ValueError(f"cannot look up Case by {field}")
        row = self.db.execute(f"SELECT * FROM cases WHERE {_quoted(field)} = ?", (value,)).fetchone()
        return dict(row) if row else None

    def cases_with_prefix(self, prefix: str) -> list[dict[str, Any]]:
        """Cases whose external id starts with prefix (tests and tools)."""
        rows = self.db.execute(f"SELECT * FROM cases WHERE {_quoted(EXTERNAL_ID)} >= ? AND {_quoted(EXTERNAL_ID)} < ?",
                               (prefix, prefix + "\uffff"))
        return [dict(r) for r in rows]

    def write_case(self, record: dict[str, Any], operation: str, external_id: str | None) -> dict[str, Any]:
        """Apply one record of a DML batch; returns Salesforce's per-record result."""
        record = dict(record)
        target_id = record.pop("Id", None) or None
        values, errors = normalize(record)
        if errors:
            return _failure(errors)
        existing = None
        if operation == "upsert":
            key = values.get(external_id or "")
            if not key:
                return _failure([RecordError("MISSING_ARGUMENT", f"{external_id} not specified", (external_id or "",))])
            existing = self.case_by(EXTERNAL_ID, key)
        elif operation in ("update", "delete"):
            if not target_id:
                return _failure([RecordError("MISSING_ARGUMENT", "Id not specified in an update call", ("Id",))])
            existing = self.case_by("Id", target_id)
            if existing is None:
                return _failure([RecordError("ENTITY_IS_DELETED" if operation == "delete" else "INVALID_CROSS_REFERENCE_KEY",
                                             "invalid cross reference id", ("Id",))])
        if operation == "delete":
            self.db.execute("DELETE FROM cases WHERE Id = ?", (existing["Id"],))  # type: ignore[index]
            return {"id": existing["Id"], "success": True, "created": False, "errors": []}  # type: ignore[index]
        merged = {**(existing or {}), **values}
        problem = missing_required(merged)
        if problem:
            return _failure([problem])
        now = iso(time.time())
        if existing is None:
            case_id = sf_id("500")
            columns = ["Id", *values, "CreatedDate", "LastModifiedDate"]
            try:
                self.db.execute(f"INSERT INTO cases ({', '.join(_quoted(c) for c in columns)}) "
                                f"VALUES ({', '.join('?' for _ in columns)})", [case_id, *values.values(), now, now])
            except sqlite3.IntegrityError:
                return _failure([RecordError("DUPLICATE_VALUE", f"duplicate value found: {EXTERNAL_ID} duplicates value on another record", (EXTERNAL_ID,))])
            return {"id": case_id, "success": True, "created": True, "errors": []}
        if values:
            assignments = ", ".join(f"{_quoted(c)} = ?" for c in values)
            self.db.execute(f"UPDATE cases SET {assignments}, LastModifiedDate = ? WHERE Id = ?",
                            [*values.values(), now, existing["Id"]])
        return {"id": existing["Id"], "success": True, "created": False, "errors": []}

    def query_cases(self, fields: list[str], where: list[tuple[str, str]], limit: int | None) -> list[dict[str, Any]]:
        sql = f"SELECT {', '.join(_quoted(f) for f in fields)} FROM cases"
        if where:
            sql += " WHERE " + " AND ".join(f"{_quoted(f)} = ?" for f, _ in where)
        sql += " ORDER BY CreatedDate, Id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [dict(r) for r in self.db.execute(sql, [v for _, v in where])]


def _quoted(column: str) -> str:
    """A column name as an SQL identifier (names come from the Case field list, never from requests)."""
    return '"' + column.replace('"', '""') + '"'


def _failure(errors: list[RecordError]) -> dict[str, Any]:
    return {"id": None, "success": False, "created": False,
            "errors": [{"statusCode": e.status_code, "message": e.message, "fields": list(e.fields)} for e in errors]}
