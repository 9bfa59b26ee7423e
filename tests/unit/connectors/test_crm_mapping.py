"""CaseEvent to Case fields, batch splitting within Salesforce limits, and the sink's retry budget (fake CRM)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from connectors.crm.base import CaseResult, Crm, TransientCrmError
from connectors.crm.salesforce import MAX_BYTES_PER_BATCH, MAX_RECORDS_PER_BATCH, case_fields, chunks
from connectors.crm.sink import CaseSink, SinkStopped, _next_offsets
from infra.settings import Settings
from schemas.records import CaseEvent


def event(**overrides) -> CaseEvent:
    fields = dict(event_id="e1", case_id="case-1", conversation_id="conv-1", type="CREATED",
                  occurred_at=datetime(2026, 11, 25, tzinfo=timezone.utc), channel="WEBCHAT", subject="Help",
                  transcript_excerpt="customer: hola", priority="LOW", status="ESCALATED", intent="complaint",
                  confidence=0.812345, sentiment="NEGATIVE", queue="es-general")
    fields.update(overrides)
    return CaseEvent(**fields)


def test_case_fields_map_enums_to_salesforce_picklists() -> None:
    fields = case_fields(event())
    assert fields["Centralita_Case_Id__c"] == "case-1"
    assert (fields["Origin"], fields["Priority"], fields["Status"]) == ("Web", "Low", "Escalated")
    assert fields["Centralita_Confidence__c"] == 0.8123 and fields["Centralita_Sentiment__c"] == "negative"


def test_long_text_is_cut_to_salesforce_lengths_and_unknown_sentiment_dropped() -> None:
    fields = case_fields(event(subject="s" * 300, transcript_excerpt="t" * 40000, sentiment="furious", intent=None))
    assert len(fields["Subject"]) == 255 and len(fields["Description"]) == 32000
    assert fields["Centralita_Sentiment__c"] is None and fields["Centralita_Intent__c"] is None


def test_chunks_respect_record_and_byte_limits() -> None:
    small = [{"a": i} for i in range(MAX_RECORDS_PER_BATCH * 2 + 5)]
    assert [len(c) for c in chunks(small)] == [MAX_RECORDS_PER_BATCH, MAX_RECORDS_PER_BATCH, 5]
    big = [{"Description": "x" * 30000} for _ in range(700)]
    split = chunks(big)
    assert len(split) == 3 and sum(len(c) for c in split) == 700
    assert all(len(str(c)) < MAX_BYTES_PER_BATCH for c in split)


class FlakyCrm(Crm):
    name = "fake"

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def upsert_cases(self, events):
        self.calls += 1
        if self.calls <= self.failures:
            raise TransientCrmError("503")
        return [CaseResult(e.case_id, True) for e in events]


def test_transient_failures_are_retried_with_backoff_then_give_up() -> None:
    settings = Settings(kafka_bootstrap="127.0.0.1:1", crm_max_attempts=3)
    sleeps: list[float] = []
    ok = CaseSink(settings, FlakyCrm(failures=2), sleep=sleeps.append)
    assert ok._upsert_with_retries([event()])[0].ok
    assert len(sleeps) == 2 and sleeps[1] > sleeps[0] * 0.3
    down = CaseSink(settings, FlakyCrm(failures=5), sleep=sleeps.append)
    with pytest.raises(SinkStopped, match="fake still failing after 3 attempts"):
        down._upsert_with_retries([event()])


def test_offsets_to_commit_are_one_past_the_last_message_per_partition() -> None:
    class Msg:
        def __init__(self, p, o):
            self.p, self.o = p, o

        def topic(self):
            return "t"

        def partition(self):
            return self.p

        def offset(self):
            return self.o

    offsets = {(tp.partition, tp.offset) for tp in _next_offsets([Msg(0, 5), Msg(1, 9), Msg(0, 7)])}
    assert offsets == {(0, 8), (1, 10)}
