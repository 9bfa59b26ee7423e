"""The bilingual knowledge base of answers (a TOML file): per intent and language, with entity placeholders."""

from __future__ import annotations

import string
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from inference.nlu import Entity

DEFAULT_KB_FILE = Path(__file__).resolve().parent / "knowledge_base.toml"
LANGUAGES = ("es", "en")


@dataclass(frozen=True)
class KnowledgeBase:
    data: dict

    @classmethod
    def load(cls, path: Path = DEFAULT_KB_FILE) -> "KnowledgeBase":
        return cls(tomllib.loads(path.read_text(encoding="utf-8")))

    @staticmethod
    def lang(language: str | None) -> str:
        return language if language in LANGUAGES else "es"

    def text(self, kind: str, language: str | None) -> str:
        """A fixed message: disclosure, clarify, handoff, csat, csat_thanks."""
        return self.data[kind][self.lang(language)]

    def has_answer(self, intent: str | None) -> bool:
        return intent is not None and intent in self.data.get("answers", {})

    def answer(self, intent: str, language: str | None, entities: Iterable[Entity]) -> str:
        """The answer for intent, placeholders filled from entities (the generic variant when one is missing)."""
        lang = self.lang(language)
        answers = self.data["answers"][intent]
        template = answers[lang]
        values = {}
        for entity in entities:
            values.setdefault(entity.label, entity.value)
        needed = {name for _, name, _, _ in string.Formatter().parse(template) if name}
        if needed - values.keys():
            template = answers.get(f"{lang}_generic", template)
            needed = {name for _, name, _, _ in string.Formatter().parse(template) if name}
            if needed - values.keys():
                return self.text("clarify", language)
        return template.format(**values)
