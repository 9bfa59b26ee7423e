"""RuleBasedNlu: the stand-in for Triton until the inference issue lands. Keyword patterns per intent in
Spanish and English (accents optional, common typos and abbreviations), a small sentiment lexicon, regex
entities and a stopword language guess. Deterministic and fast; not a model, and named so.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Sequence

from inference.nlu import Entity, NluResult

VERSION = "rules-1"

PATTERNS: dict[str, list[str]] = {
    "human_agent": [r"\b(agente|persona|humano|operador|asesor|alguien real)\b", r"\b(human|agent|person|representative|operator|real person)\b",
                    r"hablar con (una|un|alguien)", r"talk to (a|someone)"],
    "privacy_request": [r"\b(rgpd|gdpr|lopd)\b", r"(borr|elimin)\w* (mis datos|mi cuenta|mis datos personales)",
                        r"(delete|erase|remove) (my )?(data|account|personal)", r"(datos personales|personal data)",
                        r"derecho (al olvido|de acceso)", r"right to (be forgotten|access)"],
    "complaint": [r"\b(queja|reclamacion|reclamar|vergonzoso|indignad\w*|fatal|pesimo|horrible|estafa)\b",
                  r"\b(complaint|complain|unacceptable|terrible|awful|scam|disgusting|worst)\b"],
    "cancel_order": [r"\b(cancel\w*|anul\w*)\b"],
    "refund_status": [r"\b(reembols\w*|devolucion del dinero|mi dinero|abono)\b", r"\b(refund\w*|money back)\b"],
    "return_request": [r"\b(devol\w*|devuelv\w*|devuelt\w*|descambiar)\b", r"\b(return|send (it )?back)\b"],
    "delivery_problem": [r"\b(no (me )?ha llegado|no llega|no ha llegado|roto|rota|danad\w*|dañad\w*|perdid\w*|equivocad\w*)\b",
                         r"\b(not arrived|never arrived|hasn'?t arrived|didn'?t arrive|damaged|broken|lost|wrong item|missing)\b"],
    "order_status": [r"\b(donde esta|dnd esta|estado de mi pedido|seguimiento|mi pedido|cuando llega)\b",
                     r"\b(where is|wheres|order status|track\w*|my order|when will)\b"],
    "change_address": [r"(cambiar|modificar) (la |mi )?(direccion|dirección)", r"change (the |my )?(delivery )?address",
                       r"\b(direccion de entrega|new address)\b"],
    "payment_failed": [r"(pago|tarjeta) (rechazad\w*|fallid\w*|denegad\w*)", r"no (me )?deja pagar",
                       r"payment (failed|declined|didn'?t go through)", r"card (declined|rejected)"],
    "billing_question": [r"\b(factura|cobro|cargo|cobrado|iva)\b", r"\b(invoice|bill|billing|charged|charge)\b"],
    "account_access": [r"\b(contrasena|contraseña|password|login|iniciar sesion|acceder|mi cuenta|bloquead\w*|locked)\b"],
    "product_question": [r"\b(talla|tallas|stock|disponible|material|medidas|garantia)\b", r"\b(size|in stock|available|warranty|material)\b"],
    "thanks": [r"\b(gracias|grax|thx|thanks|thank you|ty)\b"],
    "goodbye": [r"\b(adios|hasta luego|chao|bye|goodbye|see you)\b"],
    "greeting": [r"^\s*(hola|buenas|buenos dias|buenas tardes|hey|hi|hello|good (morning|afternoon))\b"],
}
PRIORITY = list(PATTERNS)  # earlier intents win ties: a complaint about a refund is a complaint
NEGATIVE = {"fatal", "pesimo", "horrible", "vergonzoso", "indignado", "indignada", "enfadado", "harto", "harta", "estafa",
            "terrible", "awful", "angry", "worst", "scam", "unacceptable", "disgusting", "furious", "hate", "nunca", "never",
            "mal", "bad", "roto", "broken", "damaged", "queja", "complaint"}
POSITIVE = {"gracias", "genial", "perfecto", "excelente", "thanks", "great", "perfect", "excellent", "love", "encanta", "bien", "good"}
ES_WORDS = {"el", "la", "de", "que", "mi", "pedido", "no", "es", "por", "con", "para", "una", "hola", "quiero", "donde", "gracias", "esta", "llegado"}
EN_WORDS = {"the", "my", "is", "and", "to", "of", "order", "i", "you", "want", "where", "hi", "hello", "thanks", "please", "with", "not"}
ENTITY_PATTERNS = [
    ("email", re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")),
    ("tracking_number", re.compile(r"\b(1Z[0-9A-Z]{16}|[A-Z]{2}\d{9}[A-Z]{2})\b")),
    ("order_number", re.compile(r"(?:(?<=pedido )|(?<=order )|(?<=#))[A-Z]{0,3}-?\d{4,10}(?:-[A-Z]{2})?\b", re.IGNORECASE)),
    ("amount", re.compile(r"(?:€\s?\d+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?\s?(?:€|eur|euros|\$|usd|dollars))", re.IGNORECASE)),
    ("date", re.compile(r"\b(\d{1,2}[/-]\d{1,2}[/-]\d{2,4}|\d{4}-\d{2}-\d{2})\b")),
    ("phone", re.compile(r"(?<!\d)(?:\+\d{1,3}[\s-]?)?(?:\d[\s-]?){9,12}(?!\d)")),
]
_COMPILED = {intent: [re.compile(p) for p in patterns] for intent, patterns in PATTERNS.items()}


def fold(text: str) -> str:
    """Lowercase without accents, so 'dónde' and 'donde' match alike."""
    return "".join(c for c in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.combining(c))


def language_of(folded_words: list[str]) -> str | None:
    es = sum(w in ES_WORDS for w in folded_words)
    en = sum(w in EN_WORDS for w in folded_words)
    if es == en == 0:
        return None
    return "es" if es >= en else "en"


def entities_of(text: str) -> tuple[Entity, ...]:
    found: list[Entity] = []
    taken: list[tuple[int, int]] = []
    for label, pattern in ENTITY_PATTERNS:
        for match in pattern.finditer(text):
            span = match.span()
            if any(span[0] < end and start < span[1] for start, end in taken):
                continue
            value = match.group(0).strip()
            if label == "phone":
                value = re.sub(r"[\s-]", "", value)
            taken.append(span)
            found.append(Entity(label, value, span[0], span[1]))
    return tuple(sorted(found, key=lambda e: e.start))


def classify(text: str) -> NluResult:
    folded = fold(text or "")
    words = re.findall(r"\w+", folded)
    language = language_of(words)
    hits = {intent: sum(1 for p in patterns if p.search(folded)) for intent, patterns in _COMPILED.items()}
    hits = {i: n for i, n in hits.items() if n}
    negative = sum(w in NEGATIVE for w in words)
    positive = sum(w in POSITIVE for w in words)
    score = 0.0 if not words else max(-1.0, min(1.0, (positive - negative) / max(3, len(words) / 4)))
    sentiment = "negative" if score <= -0.3 else "positive" if score >= 0.3 else "neutral"
    if not hits:
        return NluResult(None, 0.0, sentiment, round(score, 3), language, entities_of(text or ""), VERSION)
    intent = min(hits, key=lambda i: (-hits[i], PRIORITY.index(i)))
    rivals = len(hits) - 1
    confidence = min(0.97, 0.7 + 0.12 * hits[intent] - 0.08 * rivals)
    return NluResult(intent, round(max(0.35, confidence), 3), sentiment, round(score, 3), language,
                     entities_of(text or ""), VERSION)


class RuleBasedNlu:
    """The stand-in implementation of `inference.nlu.Nlu`."""

    async def classify_batch(self, texts: Sequence[str], conversation_ids: Sequence[str]) -> list[NluResult]:
        return [classify(text) for text in texts]
