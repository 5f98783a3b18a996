"""What a question asks: its weighted content words, the kind of fact wanted, its follow-ups.

- `Terms.of(question, retriever)`: the question's content terms (French analysis, minus the
  words that only phrase a question) weighted by BM25 IDF. Words written with a capital inside
  the question name an entity and weigh `ENTITY_BOOST` times more for the coverage decision;
  lower-case words absent from the whole corpus are most often paraphrases ("surface" for "m²")
  and weigh `ABSENT_DISCOUNT` times as much (twice that when the question has no capital at
  all, since its names cannot be told from other words).
- The question read once, as search and answer take it: `reading.Question`.
- The kind of fact asked and the attribute asked about the topic: `kinds.py`.
- `contextualize(question, history)`: a short follow-up ("Et combien d'emplois ?", "Qui la
  dirige ?", "Et à Nancy ?") gets the previous question's key words; no LLM involved.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import TYPE_CHECKING

from .analysis import analyze, data_entries, data_lines, fold_accents, strip_elision

if TYPE_CHECKING:
    from ..search.retriever import HybridRetriever
    from .reading import Question

ENTITY_BOOST = 3.0
ABSENT_DISCOUNT = 0.35

# Words that phrase a question without naming its topic (compared after analysis).
_QUESTION_PHRASING = """nom appel appelle exist existe savoir sait dire dit connaitre connaît
expliquer explique parle parler pouvez peux peut pourriez voudrais aimerais chose quelqu
quelque agit agissait concerne concernant elle il trouve situe située compte comptent
selon fait font faire sert servent""".split()

_TOKEN = re.compile(r"[\w’'-]+")


@lru_cache(maxsize=1)
def _phrasing_terms() -> frozenset[str]:
    return frozenset(t for w in _QUESTION_PHRASING for t in analyze(w))


def _tokens(text: str) -> list[str]:
    """Words in their written form, elision removed ("l'Australie" -> "Australie")."""
    out = [strip_elision(m.group(0)).strip("-’'") for m in _TOKEN.finditer(text)]
    return [t for t in out if t]


_COMPOUND = re.compile(r"\b(co|vice|ex|e|re|pré|pre|post|anti|auto|multi|inter|micro|sous|néo"
                       r"|neo|bio|éco|eco|euro|cyber|télé|tele)-(\w+)", re.IGNORECASE)


def content_terms(text: str) -> list[str]:
    """Distinct analyzed terms of a question, without the words that only phrase it (nor the
    particle of a compound: "co-fondateur" gives "fondateur", see `compound_forms`)."""
    phrasing = _phrasing_terms() | {t for m in _COMPOUND.finditer(text) for t in analyze(m[1])}
    return [t for t in dict.fromkeys(analyze(text)) if t not in phrasing]


def compound_forms(text: str) -> dict[str, str]:
    """Term of a compound's head -> term of the joined spelling ("fondateur" -> "cofond")."""
    out = {}
    for m in _COMPOUND.finditer(text):
        head, joined = analyze(m[2]), analyze(m[1] + m[2])
        if head and joined and head[0] != joined[0]:
            out[head[0]] = joined[0]
    return out


def entity_terms(text: str) -> set[str]:
    """Analyzed terms of the words written with a capital (not the first word of the text)."""
    if text.isupper():
        return set()
    found: set[str] = set()
    for i, token in enumerate(_tokens(text)):
        if not token[0].isupper() or (i == 0 and not (token.isupper() and len(token) > 1)):
            continue
        found.update(analyze(token))
    return found


def name_terms(text: str) -> list[str]:
    """The names `text` asks about: its `entity_terms` of 3 letters or more that are not numbers
    (what an article must mention to be about the same place or body)."""
    return names_among(entity_terms(text))


def names_among(entities: Iterable[str]) -> list[str]:
    """The entity terms that name a place or body: 3 letters or more, not a number."""
    return sorted(t for t in entities if len(t) >= 3 and not t.isdigit())


def places_in(text: str) -> list[str]:
    """The places that `text` names (`assistant/data/places.txt`: the towns of France, the
    countries and territories, the cities of the world, as French writes them), as written
    there: lower case, accents folded, one space between words where the name has a space, a
    hyphen or an apostrophe ("la rochelle", "clermont ferrand", "tel aviv", "cote d ivoire");
    the longest where two overlap."""
    words = place_key(text).split()
    places, longest = _places()
    found, i = [], 0
    while i < len(words):
        for size in range(min(longest, len(words) - i), 0, -1):
            name = " ".join(words[i:i + size])
            if name in places:
                found.append(name)
                i += size
                break
        else:
            i += 1
    return found


def place_key(text: str) -> str:
    """`text` as `places.txt` writes a name: lower case, accents folded, one space between
    words ("Clermont-Ferrand" -> "clermont ferrand", "Côte d'Ivoire" -> "cote d ivoire")."""
    return " ".join(_PLACE_WORD.findall(fold_accents(text.lower())))


def place_words(place: str) -> list[str]:
    """The words of a place's name (as `places_in` gives it) that tell it from common words:
    all but its articles and prepositions ("la rochelle" -> ["rochelle"])."""
    return [w for w in place.split() if w not in _PLACE_LINKS]


_PLACE_WORD = re.compile(r"[^\W_]+")
_PLACE_LINKS = frozenset({"la", "le", "les", "l", "d", "de", "du", "des", "et", "en", "sur",
                          "sous", "lez"})


@lru_cache(maxsize=1)
def _places() -> tuple[frozenset[str], int]:
    """The names of `places.txt` and the most words one has."""
    names = frozenset(line.strip() for line in data_lines("places.txt"))
    return names, max(len(n.split()) for n in names)


@dataclass(frozen=True)
class Terms:
    """The query's content terms and their weights."""

    weights: dict[str, float]
    alternates: dict[str, str] = field(default_factory=dict)  # see `compound_forms`

    @classmethod
    def of(cls, question: Question, retriever: HybridRetriever, *,
           entity_boost: float = ENTITY_BOOST, absent_discount: float = ABSENT_DISCOUNT) -> Terms:
        """Weights for the coverage decision; (1.0, 1.0) gives plain IDF weights."""
        entities = question.entities
        # A question written all in lower case names nothing we can see: discount less.
        discount = absent_discount if entities else min(1.0, 2 * absent_discount)
        unseen = retriever.idf("\x00")  # the IDF of a term absent from the corpus
        weights: dict[str, float] = {}
        for term in question.content:
            idf = retriever.idf(term)
            if term in entities:
                idf *= entity_boost
            elif idf >= unseen - 1e-9 and not term.isdigit():
                idf *= discount
            weights[term] = idf
        return cls(weights, dict(question.alternates))

    def covered(self, found: AbstractSet[str]) -> float:
        """IDF-weighted share of the terms present in `found` (analyzed terms of some text)."""
        total = sum(self.weights.values())
        if total <= 0:
            return 0.0
        found = found if isinstance(found, frozenset) else frozenset(found)
        return sum(w for t, w in self.weights.items()
                   if matches(t, found) or (t in self.alternates and self.alternates[t] in found)
                   ) / total


def matches(term: str, found: AbstractSet[str]) -> bool:
    """Exact stem, or a derivation: one stem is a prefix (5+ letters) of the other, a long stem
    (7+ letters) ends the other (a compound: "fondateur" in "cofondateur"), or the pair is in
    the table of derivations the stemmer keeps apart ("dirige" / "directrice").

    Logarithmic in `found` (sorted words and sorted reversed words, cached per set): the answerer
    asks this for every question term against every candidate sentence."""
    if term in found:
        return True
    if not term.isalpha():
        return False
    found = found if isinstance(found, frozenset) else frozenset(found)
    if len(found) > CACHED_SET:  # an article's terms, built afresh for each question
        return _derived(term, found)
    return _cached_derived(term, found)


#: Term sets up to this size (a sentence, a passage's context) have their `matches` cached: the
#: same sentences come back for every feature of a question and between its search and its
#: answer. Larger ones (a whole article's terms) are new objects each question: kept in a
#: cache, they would only hold memory.
CACHED_SET = 256


def _derived(term: str, found: frozenset[str]) -> bool:
    """`matches` beyond the exact stem."""
    forward, backward = _sorted_affixes(found)
    n = len(term)
    return ((n >= 5 and _has_prefix(forward, term))  # a longer word starts with the term
            or any(term[:i] in found for i in range(5, n))  # the term starts with a word
            or (n >= 7 and _has_prefix(backward, term[::-1]))  # a longer word ends with it
            or any(term[i:] in found for i in range(1, n - 6))  # it ends with a long word
            or any(_has_prefix(forward, p) for p in _derivations().get(term, ())))


_cached_derived = lru_cache(maxsize=65536)(_derived)


@lru_cache(maxsize=1)
def _derivations() -> Mapping[str, tuple[str, ...]]:
    """Question stem -> the text stems derived from the same word, read as prefixes by
    `matches` (`assistant/data/derivations.txt`: "dirige" and "directrice" stem apart)."""
    table: dict[str, tuple[str, ...]] = {}
    for word, derived in data_entries("derivations.txt"):
        stem = analyze(word)
        if stem:
            table[stem[0]] = tuple(dict.fromkeys(t for w in derived for t in analyze(w)))
    return MappingProxyType(table)


def derived_terms(terms: Iterable[str]) -> list[str]:
    """The text stems derived from the given question stems (`_derivations`), not among them:
    what BM25 looks for beside them."""
    terms = list(terms)
    return [t for t in dict.fromkeys(d for term in terms for d in _derivations().get(term, ()))
            if t not in terms]


def attribute_matches(attribute: str, found: AbstractSet[str]) -> bool:
    """`matches` for the attribute a question asks (`kinds.attribute_term`), or one of its
    synonyms (`assistant/data/attribute_synonyms.txt`: "salariés" is answered by "emplois")."""
    return matches(attribute, found) or any(matches(s, found)
                                            for s in _synonyms().get(attribute, ()))


@lru_cache(maxsize=1)
def _synonyms() -> Mapping[str, tuple[str, ...]]:
    """Analysed term -> the analysed terms of its group's other words."""
    table: dict[str, set[str]] = {}
    for line in data_lines("attribute_synonyms.txt"):
        group = {t for word in line.split() for t in analyze(word.replace("-", " "))[-1:]}
        for term in group:
            table.setdefault(term, set()).update(group - {term})
    return MappingProxyType({t: tuple(sorted(others)) for t, others in table.items()})


def _sorted_affixes(found: frozenset[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The words of `found` sorted, and sorted reversed, cached per set: thousands of
    sentences' sets, a few articles' (one question's articles, built afresh each question)."""
    return (_sentence_affixes if len(found) <= CACHED_SET else _article_affixes)(found)


def _sort_affixes(found: frozenset[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return tuple(sorted(found)), tuple(sorted(f[::-1] for f in found))


_sentence_affixes = lru_cache(maxsize=4096)(_sort_affixes)
_article_affixes = lru_cache(maxsize=64)(_sort_affixes)


def _has_prefix(words: tuple[str, ...], prefix: str) -> bool:
    """Whether a word of the sorted `words` starts with `prefix`."""
    i = bisect_left(words, prefix)
    return i < len(words) and words[i].startswith(prefix)


# English function words: a question made of them is English, and its words cannot match the
# French articles (the answer stays in French; see `decision.py`).
_ENGLISH = frozenset("""the of in at to for from with by about what which who whom whose
how when where why does do did is are was were will would can could has have had many much this
that these those its their there according""".split())
_LATIN_WORD = re.compile(r"[A-Za-zÀ-ÿ'’]+")


@lru_cache(maxsize=1)
def english_phrasing() -> frozenset[str]:
    """Analysed terms of the English function words: they phrase an English question, the
    way `_QUESTION_PHRASING` words phrase a French one."""
    return frozenset(t for w in _ENGLISH for t in analyze(w))


def english_share(question: str) -> float:
    """Share of the question's words that are English function words (0 for French)."""
    found = [w.lower() for w in _LATIN_WORD.findall(question)]
    return sum(w in _ENGLISH for w in found) / len(found) if found else 0.0


@lru_cache(maxsize=1)
def _glossary() -> Mapping[str, tuple[str, ...]]:
    """English word -> its French words (`assistant/data/english_french.txt`)."""
    return MappingProxyType({word: tuple(french)
                             for word, french in data_entries("english_french.txt")})


def _gloss_of(word: str) -> tuple[str, ...]:
    """The French words of an English word, read in its singular or base form too
    ("applications", "founded", "running")."""
    table = _glossary()
    forms = [word]
    if word.endswith("ies"):
        forms.append(word[:-3] + "y")
    for suffix in ("es", "s", "ed", "d", "ing"):
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            stem = word[:-len(suffix)]
            forms += [stem, stem + "e"]
            if len(stem) > 3 and stem[-1] == stem[-2]:  # "running" -> "run"
                forms.append(stem[:-1])
    return next((table[f] for f in forms if f in table), ())


def english_gloss(question: str, *, first_only: bool = False) -> str:
    """The French words of an English question's words ("How many applications" ->
    "candidature dossier"): what its lexical matching looks for in French articles. With
    `first_only`, one French word for each English one."""
    out: list[str] = []
    for word in _LATIN_WORD.findall(question):
        gloss = _gloss_of(word.lower())
        out.extend(gloss[:1] if first_only else gloss)
    return " ".join(dict.fromkeys(out))


_HOW_MANY = re.compile(r"\bhow many\s+((?:[a-z-]+\s+){0,2})", re.IGNORECASE)


def english_attribute(question: str) -> str | None:
    """What an English question counts, as the French term an article writes ("How many young
    companies ...?" -> "entrepris", "How many members ...?" -> "membr"): the first plural noun
    after "how many" that the glossary knows; None for any other question."""
    m = _HOW_MANY.search(question)
    if m is None:
        return None
    for word in m.group(1).split():
        gloss = _gloss_of(word.lower()) if word.lower().endswith("s") else ()
        terms = analyze(gloss[0]) if gloss else []
        if terms:
            return terms[0]
    return None


# -- follow-up questions -----------------------------------------------------------------------
_FOLLOW_UP_START = re.compile(
    r"^\s*(?:et|mais|alors|aussi|puis|ensuite|idem|pareil|même question)\b", re.IGNORECASE
)
_ANAPHORA = re.compile(
    r"(?:\b(?:la|le|les|lui|leur|y|en|il|elle|ils|elles|celui-ci|celle-ci|ceux-ci|celles-ci"
    r"|là-bas|ce dernier|cette dernière|ce lieu|cette structure|ce projet|ce cluster)\b"
    r"|\bl['’])", re.IGNORECASE,
)


def contextualize(question: str, history: list[dict[str, str]] | None) -> str:
    """The retrieval query: the question, plus the previous question's key words when it is a
    short follow-up. A self-contained question passes through unchanged."""
    topic: str | None = None
    for message in history or []:
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str) and content.strip():
            topic = _resolve(" ".join(content.split()), topic)
    return question if topic is None else _resolve(question, topic)


def is_follow_up(question: str) -> bool:
    content = content_terms(question)
    own_names = entity_terms(question)
    if _FOLLOW_UP_START.match(question):
        return len(content) <= 4
    if not own_names and len(content) <= 1:
        return True
    return bool(_ANAPHORA.search(question)) and not own_names and len(content) <= 2


def _resolve(question: str, previous: str | None) -> str:
    """`question`, completed from `previous` (itself already resolved) when it is a follow-up."""
    if previous is None or not is_follow_up(question):
        return question
    own_names = entity_terms(question)
    own_terms = set(analyze(question))
    previous_names = entity_terms(previous)
    phrasing = _phrasing_terms()
    carried: list[str] = []
    content_words: list[str] = []
    after_name = False
    for token in _tokens(previous):
        terms = [t for t in analyze(token) if t not in phrasing]
        if not terms or set(terms) <= own_terms:
            after_name = False
            continue
        content_words.append(token)
        # A lower-case word right after a name belongs to it ("Serre numérique").
        is_name = bool(set(terms) & previous_names) or (after_name and token.islower())
        after_name = bool(set(terms) & previous_names)
        # "Et à Nancy ?" names its own place: keep what was asked, drop the old place.
        # "Qui la dirige ?" names nothing: keep the old names (the topic).
        if is_name != bool(own_names):
            carried.append(token)
    if not carried and not own_names:
        carried = content_words  # the previous question named nothing: carry its content
    carried = list(dict.fromkeys(carried))
    return f"{question} {' '.join(carried)}" if carried else question
