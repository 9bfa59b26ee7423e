"""What the conversation engine asks of inference, whatever answers it (Triton, or the rule-based stand-in).

`Nlu.classify_batch` takes a micro-batch of texts (the engine batches with `stream.take(n, within=t)`) and
returns one `NluResult` per text. An implementation must never raise for a text: when it cannot answer it
returns `NluResult.not_understood()`, so the conversation is routed as not understood and nothing is stuck.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, Sequence

from inference.entities import Entity

if TYPE_CHECKING:
    from infra.settings import Settings

INTENTS = ("greeting", "goodbye", "thanks", "order_status", "cancel_order", "return_request", "refund_status",
           "delivery_problem", "change_address", "billing_question", "payment_failed", "account_access",
           "product_question", "complaint", "human_agent", "privacy_request")


@dataclass(frozen=True)
class NluResult:
    intent: str | None
    confidence: float
    sentiment: str  # negative | neutral | positive
    sentiment_score: float  # -1..1
    language: str | None
    entities: tuple[Entity, ...] = field(default_factory=tuple)
    model_version: str = "unknown"

    @classmethod
    def not_understood(cls, language: str | None = None, model_version: str = "fallback") -> "NluResult":
        return cls(None, 0.0, "neutral", 0.0, language, (), model_version)


class Nlu(Protocol):
    async def classify_batch(self, texts: Sequence[str], conversation_ids: Sequence[str]) -> list[NluResult]: ...


def nlu_from_settings(settings: "Settings") -> Nlu:
    """What the engine asks, by CENTRALITA_NLU_BACKEND: `triton` (the client) or `rules` (the stand-in)."""
    if settings.nlu_backend == "triton":
        from inference.client import TritonNlu

        return TritonNlu.from_settings(settings)
    if settings.nlu_backend == "rules":
        from inference.rules import RuleBasedNlu

        return RuleBasedNlu()
    raise ValueError(f"CENTRALITA_NLU_BACKEND must be triton or rules, not {settings.nlu_backend!r}")
