"""Salesforce as the CRM: Case upserts by `Centralita_Case_Id__c` through Bulk API 1.0 (`salesforce-bulk`).

One Bulk job per sink batch: create an upsert job (JSON), post batches within Salesforce's per-batch limits
(10,000 records, 10 MB), close the job, poll the batches, read per-record results. Sessions are refreshed on
`InvalidSessionId`; 5xx, connection failures, rate limits and timeouts are `TransientCrmError`.
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable, TypeVar

import requests
from salesforce_bulk import SalesforceBulk
from salesforce_bulk.salesforce_bulk import BulkApiError, BulkBatchFailed

from connectors.crm.base import CaseResult, Crm, TransientCrmError
from connectors.salesforce.case_object import EXTERNAL_ID
from connectors.salesforce.oauth import OAuthError, TokenProvider
from infra.settings import Settings
from schemas.records import CaseEvent

MAX_RECORDS_PER_BATCH = 10_000
MAX_BYTES_PER_BATCH = 10_000_000
ORIGIN = {"WEBCHAT": "Web", "WHATSAPP": "WhatsApp", "SMS": "SMS", "EMAIL": "Email", "MESSENGER": "Messenger",
          "INSTAGRAM": "Instagram"}
PRIORITY = {"LOW": "Low", "MEDIUM": "Medium", "HIGH": "High"}
STATUS = {"NEW": "New", "WORKING": "Working", "ESCALATED": "Escalated", "CLOSED": "Closed"}
SENTIMENTS = {"negative", "neutral", "positive"}
T = TypeVar("T")


def case_fields(event: CaseEvent) -> dict[str, Any]:
    """The Case fields of one CaseEvent."""
    description = event.transcript_excerpt
    if len(description) > 32000:
        description = description[:31997] + "..."
    sentiment = (event.sentiment or "").lower()
    return {
        EXTERNAL_ID: event.case_id,
        "Subject": event.subject[:255],
        "Description": description,
        "Origin": ORIGIN[event.channel],
        "Priority": PRIORITY[event.priority],
        "Status": STATUS[event.status],
        "Centralita_Conversation_Id__c": event.conversation_id[:80],
        "Centralita_Intent__c": (event.intent or None) and event.intent[:80],
        "Centralita_Confidence__c": None if event.confidence is None else round(event.confidence, 4),
        "Centralita_Sentiment__c": sentiment if sentiment in SENTIMENTS else None,
        "Centralita_Queue__c": (event.queue or None) and event.queue[:80],
    }


def chunks(records: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Split records into batches within Salesforce's per-batch record and size limits."""
    out: list[list[dict[str, Any]]] = [[]]
    size = 2
    for record in records:
        record_size = len(json.dumps(record).encode()) + 1
        if len(out[-1]) >= MAX_RECORDS_PER_BATCH or size + record_size > MAX_BYTES_PER_BATCH * 0.95:
            out.append([])
            size = 2
        out[-1].append(record)
        size += record_size
    return [c for c in out if c]


class SalesforceCrm(Crm):
    name = "salesforce"

    def __init__(self, tokens: TokenProvider, host: str, api_version: str, poll_interval_s: float = 0.2,
                 batch_timeout_s: float = 600.0) -> None:
        self.tokens = tokens
        self.host = host
        self.api_version = api_version
        self.poll_interval_s = poll_interval_s
        self.batch_timeout_s = batch_timeout_s
        self._bulk: SalesforceBulk | None = None
        self._calls = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> "SalesforceCrm":
        tokens = TokenProvider(login_url=settings.sf_login_url, client_id=settings.sf_client_id,
                               client_secret=settings.sf_client_secret.get_secret_value(), flow=settings.sf_auth_flow,
                               username=settings.sf_username, jwt_key_file=settings.sf_jwt_key_file)
        return cls(tokens, settings.sf_host, settings.sf_api_version, settings.crm_poll_interval_s)

    def api_calls(self) -> int:
        return self._calls

    def upsert_cases(self, events: list[CaseEvent]) -> list[CaseResult]:
        if not events:
            return []
        return self._with_session(lambda: self._upsert(events))

    # -- internals -----------------------------------------------------------------------------------

    def _client(self) -> SalesforceBulk:
        if self._bulk is None:
            try:
                token = self.tokens.token()
            except OAuthError as exc:
                raise TransientCrmError(str(exc)) from None
            self._bulk = SalesforceBulk(sessionId=token, host=self.host, API_version=self.api_version)
        return self._bulk

    def _with_session(self, operation: Callable[[], T]) -> T:
        """Run operation; on an invalid session get a new token and run it once more."""
        for attempt in (1, 2):
            try:
                return operation()
            except BulkApiError as exc:
                if "InvalidSessionId" in str(exc) and attempt == 1:
                    self._bulk = None
                    try:
                        self.tokens.refresh()
                    except OAuthError as auth:
                        raise TransientCrmError(str(auth)) from None
                    continue
                raise self._classify(exc) from None
            except requests.RequestException as exc:
                raise TransientCrmError(f"Salesforce unreachable ({type(exc).__name__})") from None
        raise TransientCrmError("session refused twice")

    @staticmethod
    def _classify(exc: BulkApiError) -> Exception:
        status = exc.status_code or 0
        text = str(exc)
        if status >= 500 or status == 429 or "ExceededQuota" in text or "REQUEST_LIMIT_EXCEEDED" in text:
            return TransientCrmError(f"Salesforce answered HTTP {status}")
        return RuntimeError(f"Salesforce Bulk API refused the job: HTTP {status} {_exception_code(text)}")

    def _call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        self._calls += 1
        return fn(*args, **kwargs)

    def _upsert(self, events: list[CaseEvent]) -> list[CaseResult]:
        bulk = self._client()
        batches = chunks([case_fields(e) for e in events])
        job = self._call(bulk.create_upsert_job, "Case", EXTERNAL_ID, contentType="JSON")
        batch_ids = [self._call(bulk.post_batch, job, json.dumps(batch)) for batch in batches]
        self._call(bulk.close_job, job)
        results: list[CaseResult] = []
        for batch_id, batch in zip(batch_ids, batches):
            self._wait(bulk, job, batch_id)
            rows = self._call(bulk.get_batch_results, batch_id, job)
            if len(rows) != len(batch):
                raise TransientCrmError(f"batch {batch_id} returned {len(rows)} results for {len(batch)} records")
            results.extend(_result(record[EXTERNAL_ID], row) for row, record in zip(rows, batch))
        return results

    def _wait(self, bulk: SalesforceBulk, job: str, batch_id: str) -> None:
        deadline = time.monotonic() + self.batch_timeout_s
        while time.monotonic() < deadline:
            try:
                if self._call(bulk.is_batch_done, batch_id, job):
                    return
            except BulkBatchFailed as exc:
                raise TransientCrmError(f"batch failed: {exc.state_message}") from None
            time.sleep(self.poll_interval_s)
        raise TransientCrmError(f"batch not done within {self.batch_timeout_s:.0f}s")


def _result(case_id: str, row: Any) -> CaseResult:
    """One UploadResult (JSON: errors as a list of {statusCode, message, fields}) as a CaseResult."""
    if row.success in (True, "true"):
        return CaseResult(case_id, True, created=row.created in (True, "true"), crm_id=row.id)
    errors = row.error or []
    first = errors[0] if isinstance(errors, list) and errors else {}
    if isinstance(first, dict):
        return CaseResult(case_id, False, error_code=first.get("statusCode"), error_message=first.get("message"))
    return CaseResult(case_id, False, error_code="UNKNOWN", error_message=str(errors)[:500])


def _exception_code(text: str) -> str:
    start = text.find("<exceptionCode>")
    if start < 0:
        return ""
    return text[start + len("<exceptionCode>"): text.find("</exceptionCode>")]
