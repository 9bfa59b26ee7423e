"""Instagram messaging webhooks (`object: instagram`, Messenger Platform format) to canonical messages."""

from __future__ import annotations

from connectors.channels.base import RawEvent
from connectors.channels.meta_messaging import normalize_meta

SOURCE = "instagram"


def normalize(raw: RawEvent) -> list[dict]:
    return normalize_meta(raw, SOURCE, "instagram")
