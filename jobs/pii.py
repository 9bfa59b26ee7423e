"""Personal data in Spanish and English customer messages: find it, validate it, mask it with its type.

A candidate becomes a finding only when it validates, so look-alikes stay in the text: an order number is not
a phone number unless libphonenumber says it is one, a 16-digit reference is not a card unless it passes Luhn,
'12345678A' is not a DNI unless its control letter is right, '1.2.3' is not an IP address. Masks are typed
(`<EMAIL>`, `<PHONE>`, ...) so the anonymized log still reads like a conversation and still trains models.

Detectors, most specific first (a later one never takes characters an earlier one took):
EMAIL (also written out: 'ana arroba gmail punto com', 'john at gmail dot com'), IBAN (mod-97 and
per-country length, python-stdnum), CARD (13-19 digits, Luhn), ID (Spanish DNI/NIE with their control letter),
PASSPORT (after the word passport/pasaporte), IP (v4/v6, validated by `ipaddress`), PHONE (libphonenumber,
any grouping, Spanish and international), DATE_OF_BIRTH (a date after a birth cue), ADDRESS (street type,
name and number), PERSON (names after a cue - 'me llamo', 'my name is', a signature - or from the gazetteer
of first names, or known to the CRM).
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Iterable

import phonenumbers
from stdnum import iban as stdnum_iban
from stdnum import luhn
from stdnum.es import dni as stdnum_dni
from stdnum.es import nie as stdnum_nie

from jobs import addresses, names
from jobs.names import NameModel

TYPES = ("EMAIL", "IBAN", "CARD", "ID", "PASSPORT", "IP", "PHONE", "DATE_OF_BIRTH", "ADDRESS", "PERSON")
DATA_DIR = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class Finding:
    type: str
    start: int
    end: int


def _fold_table() -> dict[int, str]:
    """Letter -> its lowercase base letter, for every letter below U+2000 whose fold is one character."""
    table = {}
    for code in range(0x2000):
        c = chr(code)
        if c.isalpha():
            folded = unicodedata.normalize("NFKD", c)[0].lower()
            if len(folded) == 1 and folded != c:
                table[code] = folded
    return table


_FOLD = _fold_table()


def _fold(text: str) -> str:
    """Lowercase without accents, same length as the input (so spans map back). A translation table: this runs
    on every message of the log, and a per-character Python loop was most of the job's time."""
    return text.translate(_FOLD)


_AT = r"(?:@|\s*\(?\[?\s*(?:at|arroba)\s*\]?\)?\s*)"
_DOT = r"(?:\.|\s*\(?\[?\s*(?:dot|punto)\s*\]?\)?\s*)"
EMAIL = re.compile(rf"(?<![a-z0-9_%+-])[a-z0-9][a-z0-9_%+-]*(?:{_DOT}[a-z0-9_%+-]+)*{_AT}[a-z0-9-]+(?:{_DOT}[a-z0-9-]+)*{_DOT}(?:com|es|org|net|eu|io|co|uk|info|cat|gal|mx|ar|fr|de|it|pt|edu|gov)\b",
                   re.IGNORECASE)
_AT_WORD = re.compile(r"(?<![a-z])at(?![a-z])")  # a written-out email needs 'at' as a word ('arroba' is checked apart)
# People put spaces around the @ ('ana @ gmail.com', 'ana@ gmail.com'); a domain with a dot must follow.
PLAIN_EMAIL = re.compile(r"[\w.%+-]+ ?@ ?[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}", re.IGNORECASE)
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ -]?[A-Z0-9]{1,4}){3,9}\b", re.IGNORECASE)  # printed in 4s, the last group shorter
CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
DNI_NIE = re.compile(r"\b(?:[XYZ][-\s]?\d{7}|\d{8}|\d{2}\.\d{3}\.\d{3})[-\s]?[A-Z]\b", re.IGNORECASE)  # 12.345.678-Z too
PASSPORT = re.compile(r"\b(?:pasaporte|passport)(?:\s+(?:n[ºo°.]*|num(?:ero|ber)?|no\.?|#|es|is|:))*\s*:?\s*([A-Z]{1,3}\d{6,8}|\d{9})\b",
                      re.IGNORECASE)
# A Spanish passport number is three letters and six digits; people write it without saying what it is ('mi doc es
# pab123456'). Codes of that shape that are references carry their kind as the letters (SKU, REF...) or after a cue.
PASSPORT_ES = re.compile(r"(?<![\w-])([A-Z]{3}\d{6})(?![\w-])", re.IGNORECASE)
NOT_PASSPORT_PREFIXES = frozenset(("sku", "ref", "ped", "ord", "inv", "fac", "art", "cod", "ean", "upc", "prd", "tkt", "inc",
                                   "cas", "rma", "fra", "alb", "env", "pkg", "box", "lot", "ser", "mod", "ver"))
IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
IPV6 = re.compile(r"(?<![\w:])(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}(?![\w:])", re.IGNORECASE)
_MONTHS = (r"enero|febrero|marzo|abril|mayo|junio|julio|agosto|sept?iembre|octubre|noviembre|diciembre|"
           r"january|february|march|april|may|june|july|august|september|october|november|december")
_DATE = rf"(?:\d{{1,2}}[/.-]\d{{1,2}}[/.-](?:19|20)?\d{{2}}|\d{{4}}-\d{{2}}-\d{{2}}|\d{{1,2}} de (?:{_MONTHS}) de \d{{4}}|(?:{_MONTHS}) \d{{1,2}},? \d{{4}}|\d{{1,2}} (?:{_MONTHS}) \d{{4}})"
DOB_CUES = ("naci", "nac", "born", "birth", "dob", "cumple")  # substrings every DOB cue contains
# A birth cue, then at most a few words without digits ('naci en Sevilla el', 'my birthday is on'), then a date.
DOB = re.compile(rf"(?:naci(?:do|da)?|fecha de nacimiento|f\. ?nac\.?|born|date of birth|dob|birthday|cumpleanos|birth date)"
                 rf"\b[^\d\n.;!?]{{0,30}}?({_DATE})",
                 re.IGNORECASE)
STRONG_CUES = ("me llamo", "mi nombre es", "my name is", "name:", "nombre:", "titular:", "a nombre de", "de parte de", "on behalf of")
# Substrings of the folded text that every name cue contains: when none is there, NAME_CUE cannot match.
CUE_WORDS = ("llamo", "yamo", "nombre", "soy", "name", "i am", "i'm", "it's", "this is", "atentamente", "saludo", "regards",
             "best", "thanks", "gracias", "cheers", "titular", "parte de", "behalf", "miss")
SHORT_CUE = re.compile(r"\b(?:sra?|srta|dna|dona|don|mrs?|ms|dra?)\b")  # honorifics: whole words ('dónde' holds 'don')
_NAME_WORD = r"(?:[A-ZÁÉÍÓÚÑ][a-záéíóúñü]+|[a-záéíóúñü]+)(?:['’][A-Za-záéíóúñü]+)*"
NAME_CUE = re.compile(r"\b(?i:m[e]? ?(?:llamo|yamo)|mi nombre es|soy|my name is|my name's|i am|i'm|it's|this is|name:|nombre:|"
                      r"atentamente,?|saludos,?|un saludo,?|regards,?|best,?|thanks,?|gracias,?|cheers,?|titular:?|a nombre de|"
                      r"de parte de|on behalf of|sr\.|sra\.|srta\.|dña\.|doña|don|mr\.?|mrs\.?|ms\.?|miss|dr\.|dra\.)\s+"
                      rf"({_NAME_WORD}(?:\s+(?:de\s+(?:la\s+)?)?{_NAME_WORD}){{0,3}})")
# Phone number candidates: digits with the separators people use (spaces, dots, dashes, brackets), optionally
# international (+ or 00); libphonenumber decides which are numbers (`_phones`).
PHONE_CANDIDATE = re.compile(r"(?<![\w+])(?:\+|00)?\(?\+?\d[\d\s().\-/]{5,20}\d(?![\w])")
# A number right after one of these is a reference (order, ticket, customer number), not a phone. 'number' alone is
# not one: 'my number is', 'phone number', 'US number' come before phone numbers.
# Words right before a number that say it is a phone number: with one, a number libphonenumber finds possible
# (the right length) but not valid (a range not allocated yet, a typo) is masked all the same.
PHONE_CUE = re.compile(r"(?:\b(?:tel|telf|tlf|tfno|telefono|movil|mobile|cell|phone|whatsapp|numero|number|contacto|llamad\w*|"
                       r"llama\w*|call|ring|text|sms|fijo|al|on)\b|tel\.)\W{0,3}(?:\w+\W{1,3}){0,2}$")
DATE_SHAPE = re.compile(r"\d{1,4}[/.-]\d{1,2}[/.-]\d{1,4}$")
_REFERENCES = (r"order|pedido|ref\w*|tracking|seguimiento|cliente|client|customer|ticket|factura|invoice|albaran|envio|"
               r"shipment|parcel|paquete|socio|member|account|cuenta|expediente|case|caso|incidencia|localizador|booking|reserva")
REFERENCE_CUE = re.compile(rf"(?:#|\bn[ºo°]\.?|\b(?:{_REFERENCES})(?:\s+(?:number|numero|no\.?|n[ºo°]\.?|id|code|codigo))?)\s*(?:de\s+\w+\s*)?:?\s*#?\s*$")
# A dotted quad right after one of these is a version string, not an IP address.
VERSION_CUE = re.compile(r"\b(?:version|ver|v|firmware|build|release|ios|android|app|update|actualizacion|software|driver|"
                         r"kernel|windows|macos|chrome|firefox)\s*\.?\s*:?\s*$")
_DIGIT = re.compile(r"\d")
# Words: runs of letters (any script), with inner apostrophes (O'Connor). Folding maps letters to letters, so words
# have the same spans in a text and in its folded form, and the name lookups read the folded one.
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")


def _load_names(path: Path) -> frozenset[str]:
    lines = (line for line in path.read_text(encoding="utf-8").splitlines() if not line.startswith("#"))
    return frozenset(_fold(word) for line in lines for word in line.split())


FIRST_NAMES = _load_names(DATA_DIR / "first_names.txt")
SURNAMES = _load_names(DATA_DIR / "surnames.txt")
NOT_NAMES = _load_names(DATA_DIR / "not_names.txt")
AMBIGUOUS_NAMES = _load_names(DATA_DIR / "ambiguous_names.txt")  # names only when capitalized or after a cue  # words a name cue is often followed by ('soy cliente', "i'm sorry")


class PiiDetector:
    """Finds personal data in one text. `known_names` are names the CRM already holds (first names, surnames)."""

    def __init__(self, known_names: Iterable[str] = (), phone_regions: tuple[str, ...] = ("ES", "GB", "US"),
                 use_model: bool = False) -> None:
        self.known = frozenset(_fold(n) for name in known_names for n in name.split() if len(n) > 1)
        self.phone_regions = phone_regions
        # National number lengths (with a trunk prefix) per region: a candidate is parsed only for regions it could
        # belong to, not for all of them (parsing is most of the phone detector's time).
        self.phone_plans = {region: _NumberingPlan.of(region) for region in phone_regions}
        self.names = FIRST_NAMES | SURNAMES | self.known  # built once: these sets are looked up for every word
        self.surnames = SURNAMES | self.known
        self.first_or_known = FIRST_NAMES | self.known
        # The NER model for names the lists and cues miss (jobs/names.py). Work in progress (issue 14): off by default
        # until the job's speed with it and a second fresh set are measured.
        self.model = NameModel(self.names) if use_model else None

    def find(self, text: str, language: str | None = None) -> list[Finding]:
        found: list[Finding] = []

        def free(start: int, end: int) -> bool:
            return all(end <= f.start or f.end <= start for f in found)

        def add(kind: str, start: int, end: int) -> None:
            if start < end and free(start, end):
                found.append(Finding(kind, start, end))

        folded = _fold(text)
        if "@" in text:
            for m in PLAIN_EMAIL.finditer(text):
                add("EMAIL", *m.span())
        if "@" in text or "arroba" in folded or _AT_WORD.search(folded):
            for m in EMAIL.finditer(folded):
                add("EMAIL", *m.span())
        digit_count = len(_DIGIT.findall(text))
        if digit_count:
            self._numbers(text, folded, digit_count, add, free)
        if digit_count and ":" in text:
            for m in IPV6.finditer(text):
                if m.group(0).count(":") >= 2 and _is_ip(m.group(0)):
                    add("IP", *m.span())
        self._persons(text, folded, add)
        if self.model is not None and names.worth_reading(text):
            for start, end in self.model.spans(text, language):
                add("PERSON", start, end)
        return sorted(found, key=lambda f: f.start)

    def _numbers(self, text: str, folded: str, digit_count: int, add, free) -> None:
        """Everything that needs a digit: IBAN, card, ID, passport, IPv4, date of birth, phone, address. Each
        detector runs only when the text has what it needs (enough digits, a cue word): most messages have none."""
        if digit_count >= 4:  # check digits and a few more: some BBANs are mostly letters (Romania, Malta)
            for m in IBAN.finditer(text):
                end = _longest_valid_iban(text, m.start(), m.end())
                if end:
                    add("IBAN", m.start(), end)
        if digit_count >= 13:
            for m in CARD.finditer(text):
                digits = re.sub(r"\D", "", m.group(0))
                if 13 <= len(digits) <= 19 and luhn.is_valid(digits) and len(set(digits)) > 1:
                    add("CARD", *m.span())
        if digit_count >= 7:
            for m in DNI_NIE.finditer(text):
                value = re.sub(r"[-\s.]", "", m.group(0)).upper()
                if stdnum_dni.is_valid(value) or stdnum_nie.is_valid(value):
                    add("ID", *m.span())
        if "pasaporte" in folded or "passport" in folded:
            for m in PASSPORT.finditer(text):
                add("PASSPORT", *m.span(1))
        if digit_count >= 6:
            for m in PASSPORT_ES.finditer(text):
                if folded[m.start():m.start() + 3] not in NOT_PASSPORT_PREFIXES and \
                        not REFERENCE_CUE.search(folded[max(0, m.start() - 24):m.start()]):
                    add("PASSPORT", *m.span(1))
        if "." in text:
            for m in IPV4.finditer(text):
                if _is_ip(m.group(0)) and not VERSION_CUE.search(folded[max(0, m.start() - 24):m.start()]):
                    add("IP", *m.span())
        if any(cue in folded for cue in DOB_CUES):
            for m in DOB.finditer(folded):
                add("DATE_OF_BIRTH", *m.span(1))
        if digit_count >= 7:  # fewer digits: no phone number
            self._phones(text, folded, add, free)
        if addresses.names_a_street(folded):  # every address form needs a street word; most messages have none
            for start, end in addresses.find(text):
                add("ADDRESS", start, end)

    def _phones(self, text: str, folded: str, add, free) -> None:
        """Candidates that libphonenumber parses as a valid number of one of the regions (or international), unless
        they follow a reference cue ('pedido', 'order #'). Parsing candidates is ~20x faster than
        PhoneNumberMatcher, which scans the whole text once per region."""
        for m in PHONE_CANDIDATE.finditer(text):
            start, end = m.span()
            while text[end - 1] in ").-/ " and end > start:
                end -= 1
            candidate = text[start:end]
            if text[start] == "(" and ")" not in candidate:
                start, candidate = start + 1, candidate[1:]
            if not free(start, end) or REFERENCE_CUE.search(folded[max(0, start - 16):start]):
                continue  # part of a card or IBAN found before, or a reference number
            if self._valid_phone(candidate) or (self._possible_phone(candidate) and not DATE_SHAPE.match(candidate) and (
                    candidate.startswith(("+", "00")) or PHONE_CUE.search(folded[max(0, start - 24):start]))):
                add("PHONE", start, end)

    def _valid_phone(self, candidate: str) -> bool:
        digits = _NON_DIGITS.sub("", candidate)
        if candidate.lstrip("(").startswith(("+", "00")):  # international: libphonenumber finds the country
            if not 8 <= len(digits) - (2 if candidate.startswith("00") else 0) <= 15:
                return False
            number = _international(candidate)
            return number is not None and phonenumbers.is_valid_number(number)
        return any(plan.valid(digits) for plan in self.phone_plans.values())

    def _possible_phone(self, candidate: str) -> bool:
        """The length of a number of one of the regions (or an international one), valid or not."""
        digits = _NON_DIGITS.sub("", candidate)
        if candidate.lstrip("(").startswith(("+", "00")):
            number = _international(candidate)
            return number is not None and phonenumbers.is_possible_number(number)
        return any(plan.possible(digits) for plan in self.phone_plans.values())

    def _persons(self, text: str, folded: str, add) -> None:
        cued = any(word in folded for word in CUE_WORDS) or SHORT_CUE.search(folded)
        position = 0 if cued else len(text)  # no cue word: skip the cue regex
        while (m := NAME_CUE.search(text, position)) is not None:
            position = m.end()
            start = m.start(1)
            words = list(_WORD.finditer(folded, start, m.end(1)))
            kept = []
            for word in words:
                w = word.group(0)
                if w in NOT_NAMES or (kept and w not in self.names and not text[word.start()].isupper()):
                    break
                kept.append(word)
            strong = folded[m.start():start].strip().rstrip(",").strip() in STRONG_CUES
            if kept and (strong or kept[0].group(0) in self.names or text[kept[0].start()].isupper()):
                add("PERSON", kept[0].start(), kept[-1].end())
            else:
                position = m.start(1)  # 'best regards, Harry': the words a cue took may hold the next cue
        if self.first_or_known.isdisjoint(_WORD.findall(folded)):
            return  # no first name nor known name anywhere: the common case, one pass in C
        surnames = self.surnames
        for word in _WORD.finditer(folded):
            w = word.group(0)
            if w not in self.first_or_known:
                continue  # most words: one set lookup
            end = word.end()
            capitalized = text[word.start()].isupper()
            for nxt in _WORD.finditer(folded, end):  # surnames that follow a first name belong to it
                following = nxt.group(0)
                surname = following in surnames or (capitalized and text[nxt.start()].isupper() and len(following) > 2
                                                     and following not in NOT_NAMES and following not in FIRST_NAMES)
                if text[end:nxt.start()].strip(" ") or not surname:
                    break
                end = nxt.end()
            has_surname = end > word.end()
            if (w in FIRST_NAMES and (capitalized or has_surname or w not in AMBIGUOUS_NAMES)) or (w in self.known and len(w) > 2):
                add("PERSON", word.start(), end)

    def mask(self, text: str, language: str | None = None) -> tuple[str, dict[str, int]]:
        """The text with each finding replaced by `<TYPE>`, and the count per type."""
        counts: dict[str, int] = {}
        out, last = [], 0
        for f in self.find(text, language):
            out.append(text[last:f.start])
            out.append(f"<{f.type}>")
            last = f.end
            counts[f.type] = counts.get(f.type, 0) + 1
        out.append(text[last:])
        return "".join(out), counts


_NON_DIGITS = re.compile(r"\D")


def _international(candidate: str) -> phonenumbers.PhoneNumber | None:
    """A number written with '+' or '00', parsed (libphonenumber finds the country), or None."""
    try:
        return phonenumbers.parse(candidate if not candidate.startswith("00") else "+" + candidate[2:], None)
    except phonenumbers.NumberParseException:
        return None


@dataclass(frozen=True)
class _NumberingPlan:
    """How a number of one region can be written without '+' (as is, after the trunk prefix '0'/'1', or after the
    country code, 34612345678), and libphonenumber's validation of the national number that leaves. Building the
    number from its digits skips `phonenumbers.parse`, most of the phone detector's time; numbers whose national part
    starts with 0 (Italy) still go through parse."""

    region: str
    country_code: str
    trunk_prefix: str
    lengths: frozenset[int]

    @classmethod
    def of(cls, region: str) -> "_NumberingPlan":
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
        prefix = metadata.national_prefix or ""
        return cls(region, str(metadata.country_code), prefix if prefix.isdigit() else "",
                   frozenset(metadata.general_desc.possible_length))

    def possible(self, digits: str) -> bool:
        """A national number of a length this region has (with or without its trunk prefix)."""
        return len(digits) in self.lengths or (bool(self.trunk_prefix) and digits.startswith(self.trunk_prefix)
                                               and len(digits) - len(self.trunk_prefix) in self.lengths and digits[1:2] != "0")

    def valid(self, digits: str) -> bool:
        forms = [digits] if len(digits) in self.lengths else []
        if self.trunk_prefix and digits.startswith(self.trunk_prefix) and len(digits) - len(self.trunk_prefix) in self.lengths:
            forms.append(digits[len(self.trunk_prefix):])
        if digits.startswith(self.country_code) and len(digits) - len(self.country_code) in self.lengths:
            forms.append(digits[len(self.country_code):])
        for national in forms:
            if national.startswith("0"):
                try:
                    number = phonenumbers.parse(digits, self.region)
                except phonenumbers.NumberParseException:
                    continue
            else:
                number = phonenumbers.PhoneNumber(country_code=int(self.country_code), national_number=int(national))
            if phonenumbers.is_valid_number(number):
                return True
        return False


@lru_cache(maxsize=None)
def _bban_format(country: str) -> re.Pattern:
    """The country's BBAN structure (length and character classes) from python-stdnum's IBAN registry, compiled once
    per country. With the mod-97 checksum this is the IBAN validation stdnum does (its per-country bank check digit
    modules aside), without looking the registry up for every candidate."""
    info = stdnum_iban._ibandb.info(country.upper() + "00")[0][1]  # noqa: SLF001 - the registry stdnum validates with
    return stdnum_iban._struct_to_re(info["bban"]) if info.get("bban") else re.compile(r"(?!)")  # noqa: SLF001


def _mod97_ok(compact: str) -> bool:
    """The IBAN checksum alone (ISO 7064 mod 97-10): cheap, so stdnum's full validation runs only on candidates that
    pass it."""
    if len(compact) < 15 or not compact[:2].isalpha() or not compact[2:4].isdigit():
        return False
    rearranged = compact[4:] + compact[:4]
    try:
        return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1
    except ValueError:
        return False


def _longest_valid_iban(text: str, start: int, end: int) -> int:
    """The end of the longest IBAN starting at `start` within the candidate, or 0. The pattern (case-insensitive, groups
    of 2-4) also swallows words after the number ('... 13M02606 for the'); cut back group by group until valid."""
    candidate = text[start:end]
    cuts = [m.start() for m in re.finditer(r"[ -]", candidate)] + [len(candidate)]
    for cut in sorted(set(cuts), reverse=True):
        compact = re.sub(r"[ -]", "", candidate[:cut]).upper()
        if _mod97_ok(compact) and _bban_format(compact[:2]).match(compact[4:]):
            return start + cut
    return 0


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
