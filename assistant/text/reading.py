"""A question, read once: the typed record that search and answer read and never re-derive.

`Question.read(asked, text)` is built at the top (`Assistant.search`, `Assistant.ask_stream`)
from the user's words (`asked`) and what is searched (`text`: the same words, or a follow-up
completed with the previous question's subject, see `question.contextualize`):

    terms      the French analysis of `text` (the BM25 query)
    content    those terms less the words that only phrase a question ("quel", "savoir")
    entities   terms of the words written with a capital (not the first word)
    names      entities of 3 letters or more, not figures: what an article must mention
    kind       the kind of fact asked (`kinds.question_kind`), read on the user's own words
    attribute  what a French question asks about its topic (`kinds.attribute_term`)
    focus      content terms that are neither names nor figures
    english    share of English function words
    unit       the unit a kind-only attribute implies ("Quel âge ?" -> "ans")
    is_list    asks for several items

A question typed without capitals ("qui dirige le composteur a caen") shows no names; once its
passages are retrieved, `with_names_from(texts)` reads them in the articles: the question's words
that the articles write with a capital inside a sentence ("Composteur", "Caen").
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import lru_cache

from .analysis import analyze, fold_accents, strip_elision
from .facts import implied_unit
from .kinds import attribute_term, is_list_question, question_kind
from .question import (
    compound_forms,
    content_terms,
    english_share,
    entity_terms,
    name_terms,
    names_among,
)

ENGLISH = 0.2  # a question with this share of English function words is read as English
_WORD = re.compile(r"[\w’'-]+")
_SENTENCE_START = re.compile(r"(?:^|[.!?:«\"“\n•–—-])\s*$")


@dataclass(frozen=True)
class Question:
    asked: str
    text: str
    terms: tuple[str, ...]
    content: tuple[str, ...]
    entities: frozenset[str]
    names: tuple[str, ...]
    kind: str | None
    attribute: str | None
    focus: tuple[str, ...]
    english: float
    unit: re.Pattern[str] | None
    is_list: bool
    alternates: tuple[tuple[str, str], ...] = ()  # see `question.compound_forms`

    @classmethod
    def read(cls, asked: str, text: str | None = None) -> Question:
        text = asked if text is None else text
        english = english_share(text)
        entities = frozenset(entity_terms(text))
        content = tuple(content_terms(text))
        return cls(
            asked=asked, text=text, terms=tuple(analyze(text)), content=content,
            entities=entities, names=tuple(name_terms(text)),
            kind=question_kind(asked) or question_kind(text),
            attribute=attribute_term(text) if english < ENGLISH else None,
            focus=tuple(t for t in content if t not in entities and not t.isdigit()),
            english=english, unit=implied_unit(text), is_list=is_list_question(asked),
            alternates=tuple(compound_forms(text).items()))

    @property
    def typed(self) -> bool:
        """Written without a single capital: its names cannot be seen in it."""
        return not any(c.isupper() for c in self.text)

    def with_names_from(self, texts: Iterable[str]) -> Question:
        """For a question typed without capitals, the same question whose names are its words
        that `texts` (the retrieved articles) write with a capital inside a sentence more often
        than without; any other question unchanged."""
        if not self.typed:
            return self
        forms = {fold_accents(strip_elision(w).lower()) for w in _WORD.findall(self.text)}
        capital: Counter[str] = Counter()
        lower: Counter[str] = Counter()
        for text in texts:
            written = _written(text)
            for form in forms:
                up, down = written.get(form, (0, 0))
                capital[form] += up
                lower[form] += down
        found = frozenset(t for f in capital if capital[f] > lower[f] for t in analyze(f)
                          if t in self.content)
        if not found:
            return self
        return replace(self, entities=found, names=tuple(names_among(found)),
                       focus=tuple(t for t in self.focus if t not in found))


@lru_cache(maxsize=64)
def _written(text: str) -> dict[str, tuple[int, int]]:
    """Each word of `text` (lower case, no accents, 3 letters or more) -> how often it is
    written with a capital inside a sentence, and without one (kept for the last articles
    read: one question reads a few, the next ones mostly the same)."""
    capital: Counter[str] = Counter()
    lower: Counter[str] = Counter()
    for m in _WORD.finditer(text):
        word = strip_elision(m[0])
        if len(word) < 3 or word.isdigit():
            continue
        form = fold_accents(word.lower())
        if not word[0].isupper():
            lower[form] += 1
        elif not _SENTENCE_START.search(text[max(0, m.start() - 3):m.start()]):
            capital[form] += 1
    return {f: (capital[f], lower[f]) for f in capital.keys() | lower.keys()}
