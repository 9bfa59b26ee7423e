"""RuleBasedNlu: keyword patterns per intent in Spanish and English, with the served sentiment and entity
code and a stopword language guess. Deterministic, fast and needs no server: the engine uses it with
`CENTRALITA_NLU_BACKEND=rules` (a laptop without Triton, or a degraded mode an operator chooses).
Not a model, and named so; production uses Triton (`inference.client.TritonNlu`).
"""

from __future__ import annotations

import re
from typing import Sequence

from inference.entities import entities_of
from inference.nlu import NluResult
from inference.sentiment import sentiment_of
from inference.text import strip_accents

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
ES_WORDS = {"el", "la", "de", "que", "mi", "pedido", "no", "es", "por", "con", "para", "una", "hola", "quiero", "donde", "gracias", "esta", "llegado"}
EN_WORDS = {"the", "my", "is", "and", "to", "of", "order", "i", "you", "want", "where", "hi", "hello", "thanks", "please", "with", "not"}
_COMPILED = {intent: [re.compile(p) for p in patterns] for intent, patterns in PATTERNS.items()}


def language_of(folded_words: list[str]) -> str | None:
    es = sum(w in ES_WORDS for w in folded_words)
    en = sum(w in EN_WORDS for w in folded_words)
    if es == en == 0:
        return None
    return "es" if es >= en else "en"


def classify(text: str) -> NluResult:
    folded = strip_accents((text or "").lower())
    words = re.findall(r"\w+", folded)
    language = language_of(words)
    hits = {intent: sum(1 for p in patterns if p.search(folded)) for intent, patterns in _COMPILED.items()}
    hits = {i: n for i, n in hits.items() if n}
    mood = sentiment_of(text or "")
    found = entities_of(text or "")
    if not hits:
        return NluResult(None, 0.0, mood.label, mood.score, language, found, VERSION)
    intent = min(hits, key=lambda i: (-hits[i], PRIORITY.index(i)))
    rivals = len(hits) - 1
    confidence = min(0.97, 0.7 + 0.12 * hits[intent] - 0.08 * rivals)
    return NluResult(intent, round(max(0.35, confidence), 3), mood.label, mood.score, language, found, VERSION)


class RuleBasedNlu:
    """The stand-in implementation of `inference.nlu.Nlu`."""

    async def classify_batch(self, texts: Sequence[str], conversation_ids: Sequence[str]) -> list[NluResult]:
        return [classify(text) for text in texts]
