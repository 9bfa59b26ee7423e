"""Sentiment of a customer message in Spanish or English: a lexicon with negation and intensifiers.

Support conversations need one thing from sentiment: notice an angry or distressed customer early so the
routing policy can hand them to a person. A transparent lexicon does that predictably in both languages
and explains itself; words are matched on the folded text, so accents and letter repeats do not matter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from inference.text import fold

NEGATIVE = {
    # Spanish
    "mal", "fatal", "pesimo", "pesima", "horrible", "terrible", "vergonzoso", "verguenza", "indignado", "indignada",
    "indignante", "enfadado", "enfadada", "cabreado", "cabreada", "harto", "harta", "hartos", "estafa", "estafadores",
    "ladrones", "inaceptable", "desastre", "decepcionado", "decepcionada", "decepcion", "queja", "reclamacion",
    "denunciar", "denuncia", "nunca", "roto", "rota", "danado", "danada", "tarde", "problema", "error", "molesto",
    "molesta", "asco", "penoso", "lamentable", "ridiculo", "cansado", "cansada", "preocupado", "preocupada", "urgente",
    "odio", "peor", "basura", "timo", "incompetentes",
    # English
    "bad", "awful", "worst", "angry", "furious", "upset", "scam", "unacceptable", "disgusting", "disgrace",
    "outrageous", "disappointed", "disappointing", "complaint", "complain", "never", "broken", "damaged", "late",
    "problem", "wrong", "annoyed", "ridiculous", "useless", "pathetic", "hate", "fed", "sick", "rude", "disaster",
    "poor", "frustrated", "frustrating", "ripoff", "incompetent", "garbage", "joke", "worried",
}
POSITIVE = {
    "gracias", "genial", "perfecto", "perfecta", "excelente", "estupendo", "fenomenal", "encanta", "encantado",
    "encantada", "bien", "bueno", "buena", "feliz", "contento", "contenta", "rapido", "rapidos", "amable", "maravilla",
    "thanks", "thank", "great", "perfect", "excellent", "awesome", "love", "good", "happy", "glad", "fast", "kind",
    "amazing", "wonderful", "helpful", "appreciate", "nice", "brilliant",
}
NEGATORS = {"no", "not", "nunca", "never", "ni", "sin", "without", "dont", "isnt", "wasnt", "arent", "nada"}
INTENSIFIERS = {"muy", "muchisimo", "super", "very", "really", "so", "extremely", "totalmente", "absolutamente", "fatal"}
_WORD = re.compile(r"[a-z]+")


@dataclass(frozen=True)
class Sentiment:
    label: str  # negative | neutral | positive
    score: float  # -1 (very negative) .. 1 (very positive)


def sentiment_of(text: str) -> Sentiment:
    """Sum of word polarities (flipped after a negator within two words, doubled after an intensifier),
    plus weight for '!!' and SHOUTING, squashed to -1..1."""
    raw = text or ""
    words = _WORD.findall(fold(raw).replace("'", ""))
    total = 0.0
    for i, word in enumerate(words):
        polarity = 1.0 if word in POSITIVE else -1.0 if word in NEGATIVE else 0.0
        if not polarity:
            continue
        if any(w in NEGATORS for w in words[max(0, i - 2):i]) and word not in NEGATORS:
            polarity = -polarity * 0.8
        if i and words[i - 1] in INTENSIFIERS:
            polarity *= 2.0
        total += polarity
    if "!!" in raw or (sum(c.isupper() for c in raw) > 10 and sum(c.isupper() for c in raw) > 0.6 * sum(c.isalpha() for c in raw)):
        total -= 0.5 if total <= 0 else -0.5
    score = max(-1.0, min(1.0, total / 3.0))
    label = "negative" if score <= -0.25 else "positive" if score >= 0.25 else "neutral"
    return Sentiment(label, round(score, 3))
