"""Entities customers give in support messages: order and tracking numbers, amounts, dates, emails, phones.

Regular expressions, in precedence order; a later pattern never takes characters an earlier one matched
(an email's digits are not a phone, a tracking number is not an order). Phone numbers are validated with
`phonenumbers` (Google's libphonenumber) so that 9-digit order numbers without a '+' or a Spanish mobile
prefix are not mistaken for phones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers

from inference.text import clip

MONTHS = (r"enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|setiembre|octubre|noviembre|diciembre|"
          r"january|february|march|april|may|june|july|august|september|october|november|december|"
          r"jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec")


@dataclass(frozen=True)
class Entity:
    label: str  # order_number, tracking_number, amount, date, email, phone
    value: str
    start: int
    end: int


PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("email", re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}\b", re.IGNORECASE)),
    ("tracking_number", re.compile(r"\b(?:1Z[0-9A-Z]{16}|[A-Z]{2}\d{9}[A-Z]{2}|(?:ES|LX)\d{9,12})\b")),
    ("order_number", re.compile(
        r"(?:(?<=#)|(?<=\bn[º°o] )|(?<=\bnum )|(?<=\bpedido )|(?<=\border )|(?<=\border number )|(?<=\bpedido n[º°] ))"
        r"[A-Z]{0,4}-?\d{4,12}(?:-[A-Z]{2})?\b|\b(?:PED|ORD|PO)-?\d{4,12}\b", re.IGNORECASE)),
    ("amount", re.compile(r"(?:[€$£]\s?\d{1,7}(?:[.,]\d{1,2})?|\b\d{1,7}(?:[.,]\d{1,2})?\s?(?:€|\$|£|eur\b|euros?\b|usd\b|dollars?\b|d[oó]lares\b))",
                          re.IGNORECASE)),
    ("date", re.compile(rf"\b(?:\d{{4}}-\d{{2}}-\d{{2}}|(?<![\d.])\d{{1,2}}[/.-]\d{{1,2}}(?:[/.-]\d{{2,4}})?(?![\d.]\d)|\d{{1,2}} de (?:{MONTHS})(?: de \d{{4}})?|"
                        rf"(?:{MONTHS}) \d{{1,2}}(?:st|nd|rd|th)?(?:,? \d{{4}})?|\d{{1,2}}(?:st|nd|rd|th)? (?:of )?(?:{MONTHS}))\b",
                        re.IGNORECASE)),
]
PHONE_REGIONS = ("ES", "GB", "US")


def _phones(text: str) -> list[Entity]:
    """Valid phone numbers, written any way (+34 600 12 34 56, 600-123-456, (555) 010-9999)."""
    found: dict[tuple[int, int], Entity] = {}
    for region in PHONE_REGIONS:
        for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
            value = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
            found.setdefault((match.start, match.end), Entity("phone", value, match.start, match.end))
    return list(found.values())


def entities_of(text: str) -> tuple[Entity, ...]:
    """Entities in reading order; overlapping candidates go to the earlier label in PATTERNS, then phones."""
    text = clip(text or "")
    found: list[Entity] = []

    def free(start: int, end: int) -> bool:
        return all(end <= e.start or e.end <= start for e in found)

    for label, pattern in PATTERNS:
        for match in pattern.finditer(text):
            if free(*match.span()):
                found.append(Entity(label, match.group(0).strip(), *match.span()))
    for phone in _phones(text):
        if free(phone.start, phone.end):
            found.append(phone)
    return tuple(sorted(found, key=lambda e: e.start))
