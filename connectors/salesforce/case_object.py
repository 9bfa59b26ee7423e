"""The Salesforce `Case` object as the emulator knows it: fields, picklists, lengths, required fields.

Validation returns Salesforce's error codes and message shapes (`REQUIRED_FIELD_MISSING`,
`INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST`, `STRING_TOO_LONG`, `INVALID_FIELD`, ...) so the sink is tested
against the errors a real org returns. Unlike Salesforce, messages never repeat the rejected value: it can be
personal data and these messages end up in dead-letter headers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

EXTERNAL_ID = "Centralita_Case_Id__c"


@dataclass(frozen=True)
class FieldSpec:
    name: str
    kind: str  # text | textarea | picklist | number | id
    length: int = 255
    required: bool = False
    picklist: tuple[str, ...] = ()
    external_id: bool = False
    createable: bool = True


FIELDS: dict[str, FieldSpec] = {f.name: f for f in (
    FieldSpec("Id", "id", 18, createable=False),
    FieldSpec(EXTERNAL_ID, "text", 80, external_id=True),
    FieldSpec("Subject", "text", 255),
    FieldSpec("Description", "textarea", 32000),
    FieldSpec("Origin", "picklist", required=True,
              picklist=("Web", "Phone", "Email", "WhatsApp", "SMS", "Messenger", "Instagram")),
    FieldSpec("Priority", "picklist", picklist=("High", "Medium", "Low")),
    FieldSpec("Status", "picklist", required=True, picklist=("New", "Working", "Escalated", "Closed")),
    FieldSpec("Centralita_Conversation_Id__c", "text", 80),
    FieldSpec("Centralita_Intent__c", "text", 80),
    FieldSpec("Centralita_Confidence__c", "number"),
    FieldSpec("Centralita_Sentiment__c", "picklist", picklist=("negative", "neutral", "positive")),
    FieldSpec("Centralita_Queue__c", "text", 80),
    FieldSpec("CreatedDate", "datetime", createable=False),
    FieldSpec("LastModifiedDate", "datetime", createable=False),
)}

DATA_FIELDS = [name for name, spec in FIELDS.items() if spec.createable]


@dataclass(frozen=True)
class RecordError:
    """One Salesforce error on one record."""

    status_code: str
    message: str
    fields: tuple[str, ...] = ()

    def csv_text(self) -> str:
        """Salesforce's CSV result format: CODE:message:Field1,Field2 --"""
        return f"{self.status_code}:{self.message}:{','.join(self.fields)} --"


def normalize(record: dict[str, Any]) -> tuple[dict[str, Any], list[RecordError]]:
    """Check a record for insert/upsert; return the cleaned values (None for blanks) and its errors."""
    errors: list[RecordError] = []
    clean: dict[str, Any] = {}
    for name, value in record.items():
        spec = FIELDS.get(name)
        if spec is None:
            errors.append(RecordError("INVALID_FIELD", f"No such column '{name}' on entity 'Case'.", (name,)))
            continue
        if not spec.createable:
            errors.append(RecordError("INVALID_FIELD_FOR_INSERT_UPDATE", f"Unable to create/update fields: {name}.", (name,)))
            continue
        if value in ("", "#N/A"):
            value = None
        if value is None:
            clean[name] = None
            continue
        if spec.kind == "number":
            try:
                clean[name] = float(value)
            except (TypeError, ValueError):
                errors.append(RecordError("INVALID_TYPE_ON_FIELD_IN_RECORD", f"{name}: value not of required type", (name,)))
            continue
        text = str(value)
        if spec.kind == "picklist" and text not in spec.picklist:
            errors.append(RecordError("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", f"{name}: bad value for restricted picklist field", (name,)))
            continue
        if spec.kind in ("text", "textarea") and len(text) > spec.length:
            errors.append(RecordError("STRING_TOO_LONG", f"{name}: data value too large (max length={spec.length})", (name,)))
            continue
        clean[name] = text
    return clean, errors


def missing_required(values: dict[str, Any]) -> RecordError | None:
    """REQUIRED_FIELD_MISSING for a record that would lack a required field after the write."""
    missing = [name for name, spec in FIELDS.items() if spec.required and values.get(name) in (None, "")]
    if missing:
        return RecordError("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", tuple(missing))
    return None
