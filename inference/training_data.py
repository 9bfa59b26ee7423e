"""The bilingual intent training set: hand-written seed utterances made to look like real customer typing.

Seeds live in `inference/data/intents_<lang>.txt` (one utterance per line under `[intent]`). A dataset is
built from them deterministically (seeded RNG): placeholders get realistic values, and each seed yields
variants with the noise customers add: no accents, lowercase, letter repeats, typos, chat abbreviations
('q', 'xq', 'porfa', 'u', 'pls'), a greeting in front, code-switching ('mi order', 'el refund') and no
punctuation. Splits are made by seed, never by variant, so held-out numbers measure new phrasings and
not new spellings of sentences the model has seen.

A labeled file (`centralita train intent --data FILE`, JSON Lines with `text`, `intent`, `language`) is
used as is, each line its own group: that is how the anonymized conversation log will be trained on.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from inference.nlu import INTENTS
from inference.text import strip_accents

DATA_DIR = Path(__file__).resolve().parent / "data"
LANGUAGES = ("es", "en")
#: The model's extra class for what is none of the intents (small talk, keyboard mashes): predicted as no intent.
OUT_OF_SCOPE = "none"
LABELS = (*INTENTS, OUT_OF_SCOPE)


@dataclass(frozen=True)
class Example:
    text: str
    intent: str
    language: str
    group: int  # examples of one group (variants of one seed) always land in the same split


class DatasetError(ValueError):
    """A training file is malformed; the message names the file and line."""


def read_seeds(path: Path, language: str) -> list[tuple[str, str]]:
    """(intent, utterance) pairs from a seed file; unknown labels are an error, not a silent skip."""
    pairs: list[tuple[str, str]] = []
    intent: str | None = None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            intent = line[1:-1]
            if intent not in LABELS:
                raise DatasetError(f"{path}:{number}: unknown intent {intent!r}")
            continue
        if intent is None:
            raise DatasetError(f"{path}:{number}: utterance before any [intent] header")
        pairs.append((intent, line))
    return pairs


FILLERS = {
    "order": lambda r: r.choice(["#", "", "nº ", "PED-", "A"]) + str(r.randint(10_000, 9_999_999)),
    "tracking": lambda r: r.choice(["1Z", "ES", "LX"]) + "".join(r.choice("0123456789") for _ in range(9)) + r.choice(["", "ES", "GB"]),
    "amount": lambda r: r.choice(["{}€", "{} €", "{} euros", "${}", "{} EUR"]).format(r.choice([str(r.randint(5, 400)), f"{r.randint(5, 400)},{r.randint(10, 99)}"])),
    "date": lambda r: r.choice([f"{r.randint(1, 28)}/{r.randint(1, 12)}", f"{r.randint(1, 28)}/{r.randint(1, 12)}/2026", "el lunes", "last week", "ayer", "monday"]),
    "email": lambda r: r.choice(["ana.lopez", "jsmith", "maria88", "cliente"]) + "@" + r.choice(["gmail.com", "hotmail.es", "outlook.com"]),
}
PRODUCTS = {
    "es": ["chaqueta", "camiseta", "sudadera", "mochila", "cafetera", "funda del móvil", "zapatillas", "lámpara", "freidora", "bici"],
    "en": ["jacket", "t-shirt", "hoodie", "backpack", "coffee maker", "phone case", "sneakers", "lamp", "air fryer", "bike"],
}
ABBREVIATIONS = {
    "es": {"que": "q", "por favor": "porfa", "porque": "xq", "por qué": "xq", "también": "tb", "donde": "dnd",
           "dónde": "dnd", "pedido": "pedio", "gracias": "grax", "hola": "ola", "quiero": "kiero", "estoy": "toy", "para": "pa"},
    "en": {"you": "u", "please": "pls", "your": "ur", "thanks": "thx", "what": "wat", "are": "r", "because": "bc",
           "order": "ordr", "hello": "helo", "want to": "wanna", "going to": "gonna", "i am": "im", "don't": "dont"},
}
CODE_SWITCH = {
    "es": {"pedido": "order", "reembolso": "refund", "seguimiento": "tracking", "cuenta": "account", "devolución": "return",
           "contraseña": "password", "factura": "invoice", "envío": "shipping", "talla": "size", "agente": "agent"},
    "en": {"order": "pedido", "refund": "reembolso", "please": "por favor", "thanks": "gracias", "account": "cuenta",
           "hello": "hola", "hi": "hola", "package": "paquete", "agent": "agente"},
}
GREETINGS = {"es": ["hola, ", "buenas, ", "hola buenos días, ", "buenas tardes. "], "en": ["hi, ", "hello, ", "hey ", "good morning, "]}


def fill(template: str, language: str, rng: random.Random) -> str:
    text = re.sub(r"\{(order|tracking|amount|date|email)\}", lambda m: FILLERS[m.group(1)](rng), template)
    return text.replace("{product}", rng.choice(PRODUCTS[language]))


def typo(text: str, rng: random.Random) -> str:
    """One keyboard slip: a letter dropped, doubled or swapped with its neighbour."""
    positions = [i for i, c in enumerate(text) if c.isalpha()]
    if len(positions) < 4:
        return text
    i = rng.choice(positions[1:-1])
    kind = rng.randrange(3)
    if kind == 0:
        return text[:i] + text[i + 1:]
    if kind == 1:
        return text[:i] + text[i] + text[i:]
    return text[:i] + text[i + 1] + text[i] + text[i + 2:]


def replace_words(text: str, table: dict[str, str], rng: random.Random, share: float) -> str:
    for word, other in table.items():
        if rng.random() < share:
            text = re.sub(rf"\b{re.escape(word)}\b", other, text, flags=re.IGNORECASE)
    return text


def noisy(text: str, language: str, rng: random.Random) -> str:
    """A variant of a clean utterance with a random mix of the noise real customers add."""
    if rng.random() < 0.5:
        text = strip_accents(text)
    if rng.random() < 0.6:
        text = text.lower()
    if rng.random() < 0.4:
        text = replace_words(text, ABBREVIATIONS[language], rng, 0.6)
    if rng.random() < 0.25:
        text = replace_words(text, CODE_SWITCH[language], rng, 0.5)
    for _ in range(rng.choice([0, 0, 1, 1, 2])):
        text = typo(text, rng)
    if rng.random() < 0.4:
        text = re.sub(r"[¿?¡!.,]", "", text)
    if rng.random() < 0.15:
        text = rng.choice(GREETINGS[language]) + text[:1].lower() + text[1:]
    if rng.random() < 0.1:
        text = text + rng.choice(["??", "!!!", " pls", " porfa", " :(", " ya"])
    return text.strip()


def seed_examples(variants: int, seed: int = 7) -> list[Example]:
    """Every seed of both languages: the clean utterance plus `variants` noisy ones, grouped by seed."""
    rng = random.Random(seed)
    examples: list[Example] = []
    group = 0
    for language in LANGUAGES:
        for intent, template in read_seeds(DATA_DIR / f"intents_{language}.txt", language):
            examples.append(Example(fill(template, language, rng), intent, language, group))
            for _ in range(variants):
                examples.append(Example(noisy(fill(template, language, rng), language, rng), intent, language, group))
            group += 1
    return examples + keyboard_mashes(variants * 20)


def keyboard_mashes(count: int, seed: int = 5) -> list[Example]:
    """Random letter runs ('asdf', 'qwerty kjh') as out-of-scope examples: customers send them, and a model
    that never saw one would call them a confident greeting."""
    rng = random.Random(seed)
    rows = ["qwertyuiop", "asdfghjkl", "zxcvbnm"]
    examples = []
    for i in range(count):
        words = []
        for _ in range(rng.choice([1, 1, 2, 3])):
            row = rng.choice(rows)
            start = rng.randrange(len(row) - 2)
            word = row[start:start + rng.randint(3, 6)] if rng.random() < 0.6 else \
                "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 8)))
            words.append(word)
        examples.append(Example(" ".join(words), OUT_OF_SCOPE, LANGUAGES[i % 2], -1 - i))
    return examples


def other_language_texts() -> list[str]:
    """Utterances in languages we do not serve, for the language head's 'und' class."""
    lines = (DATA_DIR / "other_languages.txt").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def read_labeled(path: Path) -> list[Example]:
    """A labeled JSON Lines file (text, intent, language); every bad line is reported with its number."""
    examples: list[Example] = []
    for number, line in enumerate(_lines(path), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise DatasetError(f"{path}:{number}: not JSON ({error.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("text"), str) or row.get("intent") not in LABELS \
                or row.get("language") not in LANGUAGES:
            raise DatasetError(f"{path}:{number}: needs text (string), intent (one of {len(INTENTS)} labels or "
                               f"{OUT_OF_SCOPE!r}), language (es|en)")
        examples.append(Example(row["text"], row["intent"], row["language"], number))
    if not examples:
        raise DatasetError(f"{path}: no labeled examples")
    return examples


def _lines(path: Path) -> Iterator[str]:
    try:
        yield from path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise DatasetError(f"{path}: not UTF-8 (byte {error.start})") from None


def split_by_group(examples: Iterable[Example], fractions: tuple[float, ...], seed: int = 11) -> list[list[Example]]:
    """Split examples into parts by group, stratified by (intent, language), with the given fractions."""
    strata: dict[tuple[str, str], list[int]] = {}
    by_group: dict[int, list[Example]] = {}
    for example in examples:
        if example.group not in by_group:
            strata.setdefault((example.intent, example.language), []).append(example.group)
        by_group.setdefault(example.group, []).append(example)
    rng = random.Random(seed)
    parts: list[list[Example]] = [[] for _ in fractions]
    for groups in strata.values():
        rng.shuffle(groups)
        start = 0
        for index, fraction in enumerate(fractions):
            share = round(fraction * len(groups))
            later_parts = len(fractions) - index - 1
            if len(groups) >= len(fractions):  # small strata still give every part a group
                share = max(1, min(share, len(groups) - later_parts - start))
            end = len(groups) if index == len(fractions) - 1 else start + share
            for group in groups[start:end]:
                parts[index].extend(by_group[group])
            start = end
    return parts
