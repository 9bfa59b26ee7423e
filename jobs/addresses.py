"""Street addresses in running text: Spanish (street type first, abbreviated as people write them, then number,
floor and door) and English (number first, then the street and a USPS/Royal Mail street suffix, or a flat/studio
line first).

Why patterns and not the NER model: spaCy's Spanish and English pipelines tag "Calle Mayor" or "Baker Street" as a
place at best, and never the number, floor or door that make it personal; the street vocabulary below is small,
public and stable (USPS Publication 28 suffixes, Spanish street types and their usual abbreviations), so a
pattern covers it whole. A candidate needs a street word and a number, which most messages lack: the detector
checks `names_a_street` first.
"""

from __future__ import annotations

import re

# Spanish street types with the abbreviations in use (Correos, cadastre and what people type): matched as whole
# words, case-insensitive, on the accent-folded text.
_ES_TYPES = (r"calle|cl\.?|c/|cll\.?|avenida|avda\.?|avd\.?|av\.?|alameda|alda\.?|plaza|pl\.|plza\.?|pza\.?|paseo|"
             r"p[ºo°]\.?|p\.[ºo°]|ps\.?|glorieta|gta\.?|ronda|rda\.?|travesia|trav\.?|trv\.?|camino|cmno\.?|cno\.?|"
             r"carretera|ctra\.?|urbanizacion|urb\.?|poligono|pol\.?|bulevar|blvr\.?|rambla|rbla\.?|via|cuesta|cta\.?|"
             r"pasaje|pje\.?|psje\.?|barrio|callejon|carrer|rua|kalea|costanilla|plazuela|paraje|partida|lugar|"
             r"calzada|cz\.?|passeig|avinguda|pg\.")
# USPS Publication 28 street suffixes (common forms and abbreviations) and British street words.
_EN_SUFFIXES = (
    "alley|aly|annex|arcade|avenue|ave|av|bayou|beach|bend|bluff|bluffs|bottom|boulevard|blvd|branch|bridge|brook|"
    "brooks|burg|burgs|bypass|camp|canyon|cape|causeway|center|centre|centers|circle|cir|circles|cliff|cliffs|club|"
    "common|commons|corner|corners|course|court|ct|courts|cove|coves|creek|crescent|cres|crest|crossing|crossroad|"
    "curve|dale|dam|divide|drive|dr|drives|estate|estates|expressway|extension|extensions|fall|falls|ferry|field|"
    "fields|flat|flats|ford|fords|forest|forge|forges|fork|forks|fort|freeway|garden|gardens|gateway|glen|glens|"
    "green|greens|grove|groves|harbor|harbors|haven|heights|highway|hwy|hill|hills|hollow|inlet|island|islands|isle|"
    "junction|junctions|key|keys|knoll|knolls|lake|lakes|land|landing|lane|ln|light|lights|loaf|lock|locks|lodge|"
    "loop|mall|manor|manors|meadow|meadows|mews|mill|mills|mission|motorway|mount|mountain|mountains|neck|orchard|"
    "oval|overpass|park|parks|parkway|pkwy|parkways|pass|passage|path|pike|pine|pines|place|pl|plain|plains|plaza|"
    "point|points|port|ports|prairie|radial|ramp|ranch|rapid|rapids|rest|ridge|ridges|river|road|rd|roads|route|row|"
    "rue|run|shoal|shoals|shore|shores|skyway|spring|springs|spur|spurs|square|sq|squares|station|stravenue|stream|"
    "street|st|streets|summit|terrace|ter|throughway|trace|track|trafficway|trail|trl|trailer|tunnel|turnpike|"
    "underpass|union|unions|valley|valleys|viaduct|view|views|village|villages|ville|vista|walk|walks|wall|way|ways|"
    "well|wells|close|grove|wharf|yard|parade|embankment|broadway|gate|hill")
_UNIT = r"(?:apt|apartment|suite|ste|unit|flat|studio|room|floor|fl|#)\.?\s*\w{1,6}"
_WORD = r"[^\W\d_](?:[^\W\d_]|['’.-])*"  # a word of letters (any script), inner apostrophes, dots and hyphens
# Words that do not stand inside a street name: '20 for the park' is not an address.
_NOT_IN_STREET = (r"(?!(?:the|for|a|an|of|in|on|at|to|and|or|my|your|our|his|her|this|that|per|with|from|by|el|la|los|"
                  r"las|en|y|por|para|un|una|al|que|es|mi|tu|days?|times?|items?|euros?|minutes?|hours?)\b)")
# Floor, staircase and door after a Spanish number: '3ºB', '2º izq.', '1º 2ª', 'bajo A', 'esc. B, 5º C',
# 'planta 2, puerta 4', 'piso 6 puerta 12', '3-1', 'ático'.
_ES_FLOOR_PART = (r"(?:\d{1,2}\s*[ºª°o]\s*(?:[a-z]\b|\d{1,2}\s*[ºª°a]|izq(?:uierda|da)?\.?|dcha\.?|derecha|dch\.?)?|"
                  r"\d{1,2}\s*-\s*\d{1,2}\b|bajo(?:\s+[a-z]\b)?|[aá]tico|entlo\.?|entresuelo|principal|pral\.?|"
                  r"esc(?:alera)?\.?\s*[a-z0-9]\b|planta\s*\d{1,2}|puerta\s*\d{1,3}\w?|pta\.?\s*\d{1,3}\w?|piso\s*\d{1,2}|"
                  r"portal\s*\d{1,3}|bloque\s*\w{1,3}|izq(?:uierda|da)?\.?|dcha\.?|derecha|[a-z]\b)")
_ES_FLOOR = rf"(?:[,\s]+{_ES_FLOOR_PART}){{0,4}}"
_POSTCODE_CITY = rf"(?:,?\s*\d{{5}}(?!\d)(?:\s+{_WORD}(?:\s+(?:de\s+)?{_WORD}){{0,2}})?)?"

ADDRESS_ES = re.compile(
    rf"(?<![\w/])(?:{_ES_TYPES})\s*(?:(?:de|del|de la|de los|de las|d')\s+)?{_WORD}(?:\s+(?:(?:de|del|la|las|los|y|i)\s+)?{_WORD}){{0,4}}"
    rf"(?:,\s*|\s+)(?:n\.?\s?[ºo°]\.?\s*|num\.?\s*|numero\s*|s/n)?\d{{1,4}}(?:\s?[a-z]\b|\s?bis\b)?(?!\d){_ES_FLOOR}{_POSTCODE_CITY}",
    re.IGNORECASE)
ADDRESS_EN = re.compile(
    rf"(?<![\w-])(?:{_UNIT},?\s+)?\d{{1,5}}[a-z]?,?\s+(?:{_NOT_IN_STREET}{_WORD}\s+){{0,3}}?(?:{_EN_SUFFIXES})\b\.?(?:,?\s*{_UNIT})?",
    re.IGNORECASE)
# 'Flat 5, Hayward Loaf', 'Studio 3, Mills Common': the unit first, then the street without a number.
ADDRESS_EN_UNIT_FIRST = re.compile(
    rf"(?<![\w-])(?:flat|studio|apartment|apt|unit)\.?\s*\d{{1,4}}[a-z]?,\s+(?:{_NOT_IN_STREET}{_WORD}\s+){{1,3}}?(?:{_EN_SUFFIXES})\b\.?",
    re.IGNORECASE)
PATTERNS = (ADDRESS_ES, ADDRESS_EN_UNIT_FIRST, ADDRESS_EN)

STREET_WORDS = frozenset(w.strip(".\\?") for w in re.sub(r"\\\.\?|\\\.|\?", "", _ES_TYPES + "|" + _EN_SUFFIXES).split("|")) | \
    frozenset(("c/", "pº", "p.º", "po", "p.o", "flat", "studio", "apt", "suite", "unit"))  # folding turns º into o
_TOKEN = re.compile(r"[\w/ºª°.]+")


def names_a_street(folded: str) -> bool:
    """Whether any word of the (folded) text is a street type or suffix: the cheap test before the patterns."""
    for token in _TOKEN.findall(folded):
        token = token.rstrip(".")
        if token in STREET_WORDS or token.split(".")[0] in STREET_WORDS or token.startswith("c/"):
            return True
    return False


def find(text: str) -> list[tuple[int, int]]:
    """Spans of the addresses in `text` (longest first where they overlap)."""
    spans: list[tuple[int, int]] = []
    for pattern in PATTERNS:
        for m in pattern.finditer(text):
            start, end = m.span()
            while end > start and text[end - 1] in " ,.;":
                end -= 1
            if not any(s < end and start < e for s, e in spans):
                spans.append((start, end))
    return spans
