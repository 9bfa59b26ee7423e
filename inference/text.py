"""Text preparation shared by every model Centralita serves (Triton and `centralita classify` alike).

Customers type without accents, repeat letters ("holaaa") and paste whole email threads. Models see the
text through `fold` (lowercase, accents removed, letter runs shortened, digits collapsed) so that
'¿Dónde está?' and 'donde estaaa' look alike, and through `clip` so that a 1 MB message costs no more
than its first few thousand characters.
"""

from __future__ import annotations

import re
import unicodedata

#: Longest text a model reads; the start of a message carries its intent, the rest is usually quoted history.
MAX_CHARS = 2000

_RUNS = re.compile(r"(\w)\1{2,}")
_DIGITS = re.compile(r"\d")
_SPACES = re.compile(r"\s+")
_LETTER = re.compile(r"[^\W\d_]")


def decode(raw: bytes | str) -> str:
    """Text from a Triton BYTES element: invalid UTF-8 becomes U+FFFD instead of failing the batch."""
    return raw if isinstance(raw, str) else raw.decode("utf-8", errors="replace")


def clip(text: str) -> str:
    """The part of a message the models read (see MAX_CHARS)."""
    return text[:MAX_CHARS]


def strip_accents(text: str) -> str:
    """'dónde' -> 'donde'; 'ñ' becomes 'n', which is how customers without a Spanish keyboard type it."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def fold(text: str) -> str:
    """The form the intent and language models see: lowercase, no accents, runs of a letter cut to two,
    every digit as 0 (order numbers differ, their shape matters), single spaces."""
    folded = strip_accents(clip(text).lower())
    folded = _RUNS.sub(r"\1\1", folded)
    folded = _DIGITS.sub("0", folded)
    return _SPACES.sub(" ", folded).strip()


def has_letters(text: str) -> bool:
    """False for empty, emoji-only or digits-only text: there is nothing to classify."""
    return bool(_LETTER.search(clip(text)))
