"""The routing policy (a TOML file), typed, and reloaded when the file changes.

The policy says when to answer, clarify or hand off, which human queue gets a conversation and at which
priority, and how sessions time out. It holds no state: reloading it never loses a conversation.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_POLICY_FILE = Path(__file__).resolve().parent / "routing_policy.toml"


class PolicyError(ValueError):
    """The policy file is unreadable or inconsistent; the message names the file and the problem."""


@dataclass(frozen=True)
class QueueRule:
    queue: str
    intent: str | None = None
    intents: tuple[str, ...] = ()
    language: str | None = None
    priority: str | None = None

    def matches(self, intent: str | None, language: str | None, priority: str) -> bool:
        return ((self.intent is None or self.intent == intent) and (not self.intents or intent in self.intents)
                and (self.language is None or self.language == language)
                and (self.priority is None or self.priority == priority))


@dataclass(frozen=True)
class Policy:
    min_confidence: float
    escalate_intents: frozenset[str]
    not_understood_in_a_row: int
    negative_sentiment_at_or_below: float
    priority_customers: frozenset[str]
    queues: tuple[QueueRule, ...]
    high_priority_reasons: frozenset[str]
    medium_priority_reasons: frozenset[str]
    inactivity_timeout_s: float
    channel_switch_window_s: float
    csat_channels: frozenset[str] = field(default_factory=frozenset)

    def queue_for(self, intent: str | None, language: str | None, priority: str) -> str:
        for rule in self.queues:
            if rule.matches(intent, language, priority):
                return rule.queue
        return "general"

    def priority_for(self, reason: str) -> str:
        if reason in self.high_priority_reasons:
            return "HIGH"
        if reason in self.medium_priority_reasons:
            return "MEDIUM"
        return "LOW"


def load_policy(path: Path) -> Policy:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PolicyError(f"{path}: cannot read the routing policy ({exc})") from None
    try:
        answer, escalate, session = data["answer"], data["escalate"], data["session"]
        policy = Policy(
            min_confidence=float(answer["min_confidence"]),
            escalate_intents=frozenset(escalate.get("intents", [])),
            not_understood_in_a_row=int(escalate["not_understood_in_a_row"]),
            negative_sentiment_at_or_below=float(escalate["negative_sentiment_at_or_below"]),
            priority_customers=frozenset(escalate.get("priority_customers", [])),
            queues=tuple(QueueRule(queue=q["queue"], intent=q.get("intent"), intents=tuple(q.get("intents", [])),
                                   language=q.get("language"), priority=q.get("priority")) for q in data.get("queues", [])),
            high_priority_reasons=frozenset(data.get("priority", {}).get("high", [])),
            medium_priority_reasons=frozenset(data.get("priority", {}).get("medium", [])),
            inactivity_timeout_s=float(session["inactivity_timeout_minutes"]) * 60,
            channel_switch_window_s=float(session["channel_switch_window_minutes"]) * 60,
            csat_channels=frozenset(session.get("csat_channels", [])),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise PolicyError(f"{path}: missing or invalid setting {exc}") from None
    if not 0 <= policy.min_confidence <= 1:
        raise PolicyError(f"{path}: answer.min_confidence must be within 0..1")
    if policy.not_understood_in_a_row < 1:
        raise PolicyError(f"{path}: escalate.not_understood_in_a_row must be at least 1")
    return policy


class PolicyFile:
    """The policy of a file, re-read when its modification time changes; a broken edit keeps the last good one."""

    def __init__(self, path: Path = DEFAULT_POLICY_FILE) -> None:
        self.path = path
        self._mtime = path.stat().st_mtime_ns
        self._policy = load_policy(path)
        self.last_error: str | None = None

    def current(self) -> Policy:
        try:
            mtime = self.path.stat().st_mtime_ns
        except OSError as exc:
            self.last_error = str(exc)
            return self._policy
        if mtime != self._mtime:
            self._mtime = mtime
            try:
                self._policy = load_policy(self.path)
                self.last_error = None
            except PolicyError as exc:
                self.last_error = str(exc)
        return self._policy
