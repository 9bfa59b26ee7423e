"""The contract between the case sink and a CRM. To add a CRM (HubSpot, a webhook, ...), subclass `Crm`.

The sink hands `upsert_cases` the latest CaseEvent of each case in a batch and commits Kafka offsets only
after it returns, so an implementation must:

- be idempotent by `case_id` (an upsert keyed on it), because a batch is sent again after a crash;
- return one `CaseResult` per event, `ok=False` with the CRM's own error code for a record the CRM rejects
  (the sink dead-letters it with that code);
- raise `TransientCrmError` for failures worth retrying (timeouts, 5xx, rate limits); the sink backs off and
  retries the whole batch;
- handle its own authentication, re-authenticating when a session expires;
- raise any other exception for a permanent failure: the sink stops without committing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from schemas.records import CaseEvent


class TransientCrmError(RuntimeError):
    """A failure that may pass: retry later with backoff."""


@dataclass(frozen=True)
class CaseResult:
    case_id: str
    ok: bool
    created: bool = False
    crm_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None


class Crm(ABC):
    """A CRM the case sink writes to."""

    name: str = "crm"

    @abstractmethod
    def upsert_cases(self, events: list[CaseEvent]) -> list[CaseResult]:
        """Create or update one case per event, keyed by `case_id`; one result per event, same order."""

    def api_calls(self) -> int:
        """API calls made so far (for benchmarks and metrics)."""
        return 0

    def close(self) -> None:
        """Release connections."""
