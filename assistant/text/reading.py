"""A question, read once: the typed record that search and answer read and never re-derive.

`Question.read(asked, text)` is built at the top (`Assistant.search`, `Assistant.ask_stream`)
from the user's words (`asked`) and what is searched (`text`: the same words, or a follow-up
completed with the previous question's subject, see `question.contextualize`):

    terms      the French analysis of `text` (the BM25 query; not the imperative that opens a
               request, "Citez", `kinds.without_request`), with the stems derived from its
               words that the stemmer keeps apart (`question.derived_terms`: "préside" ->
               "president"); for an English question, with the French words of its glossary
               (`question.english_gloss`)
    content    those terms less the words that only phrase a question ("quel", "savoir";
               English function words), plus one French word for each glossed English one
    entities   terms of the words written with a capital (not the first word)
    names      entities of 3 letters or more, not figures: what an article must mention
    kind       the kind of fact asked (`kinds.question_kind`), read on the user's own words
    attribute  what a French question asks about its topic (`kinds.attribute_term`); in an
               English one, what "how many" counts (`question.english_attribute`)
    focus      content terms that are neither names nor figures
    english    share of English function words
    unit       the unit a kind-only attribute implies ("Quel âge ?" -> "ans")
    is_list    asks for several items
    places     for a question typed without capitals, once read in its articles
               (`with_names_from`): the terms of the places it names (towns, countries)

A question typed without capitals ("qui dirige le composteur a caen") shows no names; once its
passages are retrieved, `with_names_from(texts)` reads them in the articles: the question's words
that the articles write with a capital inside a sentence ("Composteur", "Caen"); and, for the
rule that refuses a question naming a place its answer's articles never mention, the places it
names (`places`: "limoges" in "qui dirige la french tech de limoges", "estonie", "lisbonne").
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from functools import lru_cache
from itertools import combinations, product

from .analysis import analyze, fold_accents, strip_elision
from .facts import implied_unit
from .kinds import attribute_term, is_list_question, question_kind, without_request
from .question import (
    compound_forms,
    content_terms,
    derived_terms,
    english_attribute,
    english_gloss,
    english_phrasing,
    english_share,
    entity_terms,
    name_terms,
    names_among,
    place_words,
    places_in,
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
    places: tuple[str, ...] = ()  # a typed question's places, see `with_names_from`

    @classmethod
    def read(cls, asked: str, text: str | None = None) -> Question:
        text = asked if text is None else text
        english = english_share(text)
        topic = without_request(text)  # "Citez les villes..." is about "les villes..."
        entities = frozenset(entity_terms(topic))
        terms, content = analyze(topic), content_terms(topic)
        terms += derived_terms(terms)  # "préside" finds "président"
        if english >= ENGLISH:  # French words for the English ones: articles are in French
            terms = list(dict.fromkeys(terms + analyze(english_gloss(topic))))
            phrasing = english_phrasing()
            content = [t for t in content if t not in phrasing]
            content += [t for t in content_terms(english_gloss(topic, first_only=True))
                        if t not in content]
        return cls(
            asked=asked, text=text, terms=tuple(terms), content=tuple(content),
            entities=entities, names=tuple(name_terms(topic)),
            kind=question_kind(asked) or question_kind(text),
            attribute=attribute_term(text) if english < ENGLISH else english_attribute(text),
            focus=tuple(t for t in content if t not in entities and not t.isdigit()),
            english=english, unit=implied_unit(text), is_list=is_list_question(asked),
            alternates=tuple(compound_forms(text).items()))

    def spelled(self, frequency: Callable[[str], int]) -> Question:
        """A question typed without accents, its words spelt as the articles write them
        where that changes their analysis: the French stemmer reads "universite" as
        "universit" and "université" as "univers", "pepiniere" and "pépinière" apart. A word
        takes the accented form (`accented_forms`) whose term the most articles' chunks hold
        (`frequency`: the lexical store's document frequency), if more than its own. Any other
        question unchanged."""
        if _ACCENT.search(self.text):
            return self
        text = _PLAIN_WORD.sub(lambda m: _best_spelling(m.group(0), frequency), self.text)
        return self if text == self.text else Question.read(self.asked, text)

    @property
    def typed(self) -> bool:
        """Written without a single capital: its names cannot be seen in it."""
        return not any(c.isupper() for c in self.text)

    def with_names_from(self, texts: Iterable[str]) -> Question:
        """For a question typed without capitals, the same question whose names are its words
        that `texts` (the retrieved articles) write with a capital inside a sentence more often
        than without, and whose `places` are the terms of the places it names (a town of
        France, a country, a city of the world: `question.places_in`) but those whose words
        `texts` all write in lower case more often than with a capital ("qu'une startup
        vienne": no town); any other question unchanged."""
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
        named = [place for place in places_in(self.text)  # "tel aviv" after "un tel projet"
                 if any(capital[w] >= lower[w] for w in place_words(place))]
        places = tuple(dict.fromkeys(t for place in named for t in analyze(place)))
        if not found and not places:
            return self
        # typed, it has no entities of its own (no capital): `found`, empty or not, is them
        return replace(self, entities=found, names=tuple(names_among(found)),
                       focus=tuple(t for t in self.focus if t not in found), places=places)


_ACCENT = re.compile(r"[à-ÿÀ-ß]")
_PLAIN_WORD = re.compile(r"[a-zA-Z]{4,}")
#: Where an accent changes the French stemmer's reading: the suffix ("-ité", "-ière", "-ée").
SUFFIX_LETTERS = 5
_E_FORMS = ("é", "è", "ê")


def accented_forms(word: str) -> list[str]:
    """`word` with accents on the "e"s of its last `SUFFIX_LETTERS` letters (at most three of
    them), one accent before two: "universite" -> "université", "pepiniere" -> "pepinière"
    (an accent before the suffix does not change the stem)."""
    start = max(0, len(word) - SUFFIX_LETTERS)
    places = [i for i in range(start, len(word)) if word[i] in "eE"][-3:]
    out = []
    for size in range(1, len(places) + 1):
        for chosen in combinations(places, size):
            for accents in product(_E_FORMS, repeat=size):
                letters = list(word)
                for i, accent in zip(chosen, accents):
                    letters[i] = accent
                out.append("".join(letters))
    return out


def _best_spelling(word: str, frequency: Callable[[str], int]) -> str:
    """`word`, or the first of its accented forms analysed to another term that more chunks
    hold (the frequencies are asked only when such a form exists)."""
    terms = analyze(word)
    if len(terms) != 1:
        return word
    other: dict[str, str] = {}  # another term -> the first form analysed to it
    for form in accented_forms(word):
        found = analyze(form)
        if len(found) == 1 and found[0] != terms[0]:
            other.setdefault(found[0], form)
    best, most = word, frequency(terms[0]) if other else 0
    for term, form in other.items():
        if (count := frequency(term)) > most:
            best, most = form, count
    return best


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
