"""French sentence splitting with exact character offsets, and what a sentence holds.

`split_sentences(text)` returns `(start, end)` spans with `text[start:end]` a sentence stripped of
surrounding whitespace. Lines are hard boundaries (headings, bullet items "•", quoted interview
questions); inside a line a sentence ends at `.`, `!`, `?`, `…` or `...`, with any closing quote or
bracket kept, when the next word starts like a sentence (capital, digit, opening quote). It does not
end after an abbreviation (M., Mme., St., p. ex., cf., janv. ...) or an initial ("J. Dupont"), nor
inside a short quotation (« », “ ”, "...") that closes on the same line; figures never split
("3.000", "34 000 000 €", "2 M€").

The feature helpers (`has_person`, `numbers`, `has_date`...) tell which kind of fact a sentence
carries, so a "Qui ?" question can prefer a sentence with a name and "Combien ?" one with a figure.
"""

from __future__ import annotations

import re
from functools import lru_cache

from .analysis import STOPWORDS, analyze, fold_accents, words
from .kinds import CARDINALS, FRACTIONS

Span = tuple[int, int]
#: Recorded in the index manifest: sentence rows are split with this version of the rules.
SENTENCE_SPLITTER_VERSION = 2  # 2: hard-wrapped lines of a paragraph joined
MAX_QUOTE = 600  # a longer quotation is split into its own sentences

_SPACE = "[ \t\u00a0\u202f\u2009]"
_BULLETS = "•◦▪▫‣●○·*–—-"
# An end mark, then closing quotes/brackets (French style allows a space before »), then space,
# then what starts a sentence: a capital, a digit, an opening quote/bracket or a bullet.
_END = re.compile(
    rf"(?:\.\.\.|[.!?…])+(?:{_SPACE}*[»\"”’)\]])*(?={_SPACE}+[«\"“(\[•\d\w])"
)
_NEXT_START = re.compile(rf"{_SPACE}+(?P<first>[«\"“(\[•]?{_SPACE}*\w)")
_TOKEN_BEFORE = re.compile(r"(\S+)$")
_DOTTED = re.compile(r"(?:\w{1,3}\.-?)+\w{1,3}")

# Abbreviations after which a period does not end a sentence (compared without accents).
_TITLES = frozenset("m mm mme mmes mlle mlles me mgr dr pr st ste sts stes prof".split())
_ABBREVIATIONS = frozenset(
    """cf ex env av apr vol chap fig ed coll tel fax ref art no nos num min max approx hab
    janv fevr avr juil sept oct nov dec bd boul ca resp cie ets dept sq ss vs""".split()
)


@lru_cache(maxsize=64)
def split_sentences(text: str) -> tuple[Span, ...]:
    """Sentence spans of `text` (cached: articles are split again at every question). A line
    break ends a sentence, except inside a hard-wrapped paragraph: a line that does not end a
    sentence followed by one that starts in lower case ("quatorze jeunes\npousses") is one."""
    spans: list[Span] = []
    lo = hi = -1
    for line in re.finditer(r"[^\n]+", text):
        if lo >= 0 and _WRAPPED.search(text, hi - 1, line.start() + 1):
            hi = line.end()
            continue
        if lo >= 0:
            spans.extend(_split_line(text, lo, hi))
        lo, hi = line.start(), line.end()
    if lo >= 0:
        spans.extend(_split_line(text, lo, hi))
    return tuple(spans)


# The end of a line that does not end a sentence, one line break, a lower-case word: a wrap.
_WRAPPED = re.compile(r"[^.!?…:;»\s]\n[a-zà-ÿœæ]")


def _split_line(text: str, lo: int, hi: int) -> list[Span]:
    spans: list[Span] = []
    start = counted = lo
    straight = 0  # '"' seen on the line before `counted`
    for match in _END.finditer(text, lo, hi):
        cut = match.end()
        if _is_abbreviation(text[max(start, match.start() - 40):match.start()],
                            text[match.start()]):
            continue
        straight += text.count('"', counted, cut)
        counted = cut
        if _inside_quote(text, straight % 2 == 1, start, cut, hi):
            continue
        nxt = _NEXT_START.match(text, cut, hi)
        if nxt is None or not _starts_sentence(nxt.group("first")):
            continue
        spans.append((start, cut))
        start = cut
    spans.append((start, hi))
    return [s for s in (_strip(text, a, b) for a, b in spans) if s is not None]


def _is_abbreviation(before: str, mark: str) -> bool:
    if mark != ".":
        return False
    token = _TOKEN_BEFORE.search(before)
    if token is None:
        return False
    word = token.group(1).lstrip("«\"“([").split("'")[-1].split("’")[-1]
    if _DOTTED.fullmatch(word):  # "J.-C.", "c.-à-d.", "U.S.", "p.ex."
        return True
    if len(word) == 1 and word.isalpha():  # initials, "p." of "p. ex."
        return True
    folded = fold_accents(word).lower()
    return folded in _ABBREVIATIONS or (folded in _TITLES and word[:1].isupper())


def _inside_quote(text: str, odd_straight: bool, start: int, cut: int, hi: int) -> bool:
    """True inside a quotation (« », “ ” or a pair of ") that closes later on the line, within
    `MAX_QUOTE` characters: a quoted statement stays one sentence with its attribution
    (« ... », explique-t-elle.). Every search is bounded: long lines stay linear."""
    lo = max(start, cut - MAX_QUOTE)
    for opening, closing in (("«", "»"), ("“", "”"), ('"', '"')):
        if opening == '"' and not odd_straight:
            continue
        opened = text.rfind(opening, lo, cut)
        if opened < 0 or (opening != closing and text.rfind(closing, opened, cut) >= 0):
            continue
        if text.find(closing, cut, min(hi, opened + MAX_QUOTE + 1)) >= 0:
            return True
    return False


def _starts_sentence(first: str) -> bool:
    char = first[-1]
    return char.isupper() or char.isdigit() or first[0] in "«\"“([•"


def _strip(text: str, a: int, b: int) -> Span | None:
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    return (a, b) if b > a and any(c.isalnum() for c in text[a:b]) else None


def mostly_inside(start: int, end: int, lo: int, hi: int) -> bool:
    """Whether the sentence [start, end) lies mostly (half of it, or 100 characters) inside the
    passage [lo, hi): the rule that attaches a sentence to the chunks that hold it."""
    inside = min(end, hi) - max(start, lo)
    return inside > 0 and (inside >= (end - start) / 2 or inside >= 100)


def sentence_text(text: str, span: Span) -> str:
    """The sentence `span` of `text` as it is shown, embedded and matched (see `display`)."""
    return display(text[span[0]:span[1]])


@lru_cache(maxsize=16384)
def display(sentence: str) -> str:
    """A sentence as shown in an answer: one line, no bullet mark (NBSP kept), no quotation
    mark left dangling at either end by the split (`Ce lieu de 17 000 m²."` -> `... m².`)."""
    sentence = re.sub(r"[ \t\r\n]+", " ", sentence).strip()
    sentence = sentence.lstrip(_BULLETS + " ").strip()
    if sentence.count('"') % 2:
        sentence = sentence[:-1] if sentence.endswith('"') else (
            sentence[1:] if sentence.startswith('"') else sentence)
    if sentence.count("«") < sentence.count("»") and sentence.endswith("»"):
        sentence = sentence[:-1]
    elif sentence.count("«") > sentence.count("»") and sentence.startswith("«"):
        sentence = sentence[1:]
    return sentence.strip(" \u00a0\u202f")


def is_bullet(sentence: str) -> bool:
    return sentence[:1] in "•◦▪▫‣●○·*" or bool(re.match(r"[–—-]\s", sentence))


def introduces_list(sentence: str) -> bool:
    """A line that introduces a bulleted list: it ends with a colon."""
    return sentence.rstrip().endswith(":")


# -- what a sentence holds ----------------------------------------------------------------------
_NAME_WORD = r"[A-ZÀ-ÖØ-Þ][a-zà-öø-ÿ]+(?:-[A-ZÀ-ÖØ-Þ][a-zà-öø-ÿ]+)?"
_PERSON = re.compile(
    rf"(?<![\w'’])({_NAME_WORD})(?:{_SPACE}+(?:de{_SPACE}+|d[’'])?({_NAME_WORD}|[A-ZÀ-ÖØ-Þ]{{2,}}))"
)
_UPPER_NAME = re.compile(r"\b([A-ZÀ-ÖØ-Þ]{2,}(?:-[A-ZÀ-ÖØ-Þ]{2,})?)\s+([A-ZÀ-ÖØ-Þ]{3,})\b")
_NUMBER = re.compile(
    r"(?<![\w.,])\d{1,3}(?:(?:[ \u00a0\u202f.]\d{3})+|\d*)(?:,\d+)?(?![\w])"
)
_UNIT = re.compile(
    r"[ \u00a0\u202f]*(?:%|€|\$|m²|m2|k€|m€|md€|euros?\b|millions?\b|milliards?\b|mètres?\b"
    r"|hectares?\b|km\b|places?\b|emplois?\b|salariés?\b|entreprises?\b|startups?\b"
    r"|start-up\b|personnes?\b|membres?\b|participants?\b|projets?\b|lieux\b|visiteurs?\b)",
    re.IGNORECASE,
)
_MONTH = (r"janvier|février|fevrier|mars|avril|mai|juin|juillet|août|aout|septembre|octobre"
          r"|novembre|décembre|decembre")
_DATE = re.compile(
    rf"\b(?:\d{{1,2}}(?:er)?\s+(?:{_MONTH})(?:\s+\d{{4}})?|(?:{_MONTH})\s+\d{{4}}"
    r"|\d{1,2}/\d{1,2}/\d{2,4}|(?:en|depuis|dès|des|fin|début|debut|d'ici)\s+\d{4})\b",
    re.IGNORECASE,
)
_YEAR = re.compile(r"\b(1[89]\d\d|20\d\d)\b")


@lru_cache(maxsize=16384)
def names(sentence: str) -> frozenset[str]:
    """Capitalised word pairs that look like names of people (folded: "wafaa maadnous")."""
    found = {f"{m.group(1)} {m.group(2)}" for m in _PERSON.finditer(sentence)}
    found |= {f"{m.group(1)} {m.group(2)}" for m in _UPPER_NAME.finditer(sentence)}
    return frozenset(fold_accents(n).lower() for n in found)


_PROPER = re.compile(r"(?<![\w'’-])[A-ZÀ-ÖØ-Þ][\w'’-]*")


# A sentence opening on a personal pronoun or a possessive/demonstrative determiner refers back to
# the sentence before it (same paragraph); impersonal "il y a", "il faut"... do not.
_ANAPHOR = re.compile(
    r"[«\"“(\s]*(?:(?:Son|Sa|Ses|Leur|Leurs|Elle|Elles|Ils|Ce|Cet|Cette|Ces|Celui-ci|Celle-ci"
    r"|Ceux-ci|Celles-ci)\b(?!-là)"
    r"|Il\b(?!\s+(?:y\b|s['’]agi|sembl|rest|(?:a\s+|aura\s+|avait\s+)?fa(?:u|ll)"
    r"|(?:est|était|sera)\s+(?:alors\s+)?(?:question|prévu|temps|possible|difficile|vrai))))"
)




def refers_back(sentence: str) -> bool:
    """Whether `sentence` opens on an anaphor ("Son porte-manteaux...", "Elle...") and so needs
    the sentence before it to be understood."""
    return _ANAPHOR.match(sentence) is not None


@lru_cache(maxsize=16384)
def proper_nouns(sentence: str) -> frozenset[str]:
    """Words written with a capital, except the sentence's first word (folded)."""
    body = display(sentence)
    first = re.match(r"[^\w]*[\w'’-]+", body)
    start = first.end() if first else 0
    return frozenset(fold_accents(m.group(0)).lower() for m in _PROPER.finditer(body, start))


# A sentence opening on a name of several words ("Pollen Vision utilise...").
_OPENING_NAME = re.compile(r"[^\w]*([A-ZÀ-ÖØ-Þ][\w’-]*)\s+[A-ZÀ-ÖØ-Þ]")


#: A series of items in prose: "un atelier de numérisation, une salle d'immersion, des bureaux et
#: un studio", "Agriculteurs, retraités, lycéens ou infirmières libérales", "Le Mans Métropole a
#: apporté 3 millions d'euros, la Région 2 millions, et l'État a accordé une subvention ...".
_CONJUNCTION = re.compile(r"\s(?:et|ou|ainsi que|puis)\s")  # before the last item
_SERIES_START = re.compile(r"[;:.!?«»()]")  # no item runs across one; a comma ends an item only
SERIES_ITEM_WORDS = 14  # a longer piece before the last is a clause, not an item


def series_length(sentence: str) -> int:
    """Items in the longest enumeration of the sentence ("A, B, C et D": 4; at least three
    items; those before the conjunction of at most `SERIES_ITEM_WORDS` words, the last one of
    any length: where it ends cannot be told), 0 without one. A comma before the conjunction
    (", et l'État") ends the item before it."""
    best = 0
    for m in _CONJUNCTION.finditer(sentence):
        if not _SERIES_START.split(sentence[m.end():], maxsplit=1)[0].split():
            continue
        head = _SERIES_START.split(sentence[:m.start()])[-1].rstrip().removesuffix(",")
        before = 0
        for piece in reversed(head.split(",")):
            if not 0 < len(piece.split()) <= SERIES_ITEM_WORDS:
                break
            before += 1
        if before >= 2:
            best = max(best, before + 1)
    return best


@lru_cache(maxsize=16384)
def numbers(sentence: str) -> tuple[tuple[str, bool], ...]:
    """Figures in the sentence as (digits only, followed by a unit or a magnitude)."""
    out = []
    for m in _NUMBER.finditer(sentence):
        digits = re.sub(r"\D", "", m.group(0).split(",")[0])
        out.append((digits, bool(_UNIT.match(sentence, m.end()))))
    return tuple(out)


@lru_cache(maxsize=16384)
def dates(sentence: str) -> frozenset[str]:
    """Dates and years mentioned ("9 avril 2015", "juin 2012", "en 2015", "01/10/2020")."""
    found = {fold_accents(m.group(0)).lower() for m in _DATE.finditer(sentence)}
    return frozenset(found | set(_YEAR.findall(sentence)))


_WORD_OR_SIGN = re.compile(r"[\w’'-]+|[€%²]")
_FIGURE_WORD = re.compile(r"\d[\d.,]*")


def _is_figure(token: str) -> bool:
    """A figure in digits, or in letters, compound ("vingt-deux") or a fraction ("un tiers")."""
    return bool(_FIGURE_WORD.fullmatch(token)) or any(
        _SPELLED.fullmatch(part) or part.lower() in FRACTIONS for part in token.split("-"))


@lru_cache(maxsize=16384)
def near_figures(sentence: str, window: int = 3) -> frozenset[str]:
    """Analyzed terms of the words at most `window` words from a figure, written in digits or
    in letters ("740 entreprises adhérentes", "budget de 410 000 euros", "un millier de
    visiteurs"): what the figures of the sentence count or measure."""
    tokens = _WORD_OR_SIGN.findall(sentence)
    figures = [i for i, t in enumerate(tokens) if _is_figure(t)]
    found: set[str] = set()
    for i, token in enumerate(tokens):
        if any(abs(i - j) <= window for j in figures):
            found.update(analyze(token))
    return frozenset(found)


# -- does a sentence hold the kind of fact asked? ------------------------------------------------
@lru_cache(maxsize=1024)
def _words(text: str) -> frozenset[str]:
    return frozenset(words(text))


def fact_score(kind: str | None, sentence: str, question: str) -> float:
    """How well the sentence carries the kind of fact asked (0..1), ignoring what the question
    already says (a year or a name copied from the question answers nothing)."""
    asked = _words(question)
    if kind == "person":
        new = [n for n in names(sentence)
               if not set(n.split()) & asked and n.split()[0] not in STOPWORDS]
        return 1.0 if new else 0.0
    if kind == "name":  # "Quels clusters... ?": the more new names, the better
        fresh = [n for n in proper_nouns(sentence) if n not in asked and n not in STOPWORDS]
        if not fresh:  # the one name may open the sentence, its second word already asked
            opening = _OPENING_NAME.match(display(sentence))
            fresh = [n for n in ([fold_accents(opening[1]).lower()] if opening else [])
                     if n not in asked and n not in STOPWORDS]
        return 0.0 if not fresh else 0.75 if len(fresh) == 1 else 1.0
    if kind == "place":  # "à Valenciennes", "en Moselle", "au nord de Lille"
        new_places = [m.group(1) for m in _PLACE.finditer(sentence)
                      if m.group(1).lower() not in asked]
        if new_places:
            return 1.0
        return 0.5 if any(n not in asked for n in proper_nouns(sentence)) else 0.0
    if kind == "date":
        asked_numbers = set(re.findall(r"\d+", question))
        return 1.0 if any(not set(re.findall(r"\d+", d)) <= asked_numbers
                          for d in dates(sentence)) else 0.0
    if kind == "frequency":  # "tous les deux ans", "chaque mois", "deux fois par an"
        return 1.0 if _FREQUENCY.search(sentence) else 0.0
    if kind in {"number", "money", "area"}:
        asked_numbers = {re.sub(r"\D", "", n)
                         for n in re.findall(r"\d[\d \u00a0\u202f.]*", question)}
        figures = [(d, unit) for d, unit in numbers(sentence) if d not in asked_numbers]
        if not figures:  # "le million d'euros", "un millier de visiteurs", "une quarantaine"
            spelled = _SPELLED.search(sentence)
            return 0.0 if spelled is None else 1.0 if _MONEY.search(sentence) else 0.6
        if kind == "money":
            return 1.0 if _MONEY.search(sentence) else 0.5
        if kind == "area":
            return 1.0 if _AREA.search(sentence) else 0.4
        return 1.0 if any(unit for _, unit in figures) else 0.6
    return 0.0


_SPELLED = re.compile(
    r"\b(?:millions?|milliards?|milliers?|centaines?|dizaines?|douzaines?|vingtaines?"
    r"|trentaines?|quarantaines?|cinquantaines?|soixantaines?|" + "|".join(CARDINALS) + r")\b",
    re.IGNORECASE,
)
_PLACE = re.compile(r"\b(?:à|au|aux|en|dans|près de|sur|de|basée?s? à)\s+(?:l['’]|la\s+|le\s+)?"
                    r"([A-ZÀ-ÖØ-Þ][\w-]+)")
_MONEY = re.compile(r"€|\beuros?\b|\bmillions? d['’]euros", re.IGNORECASE)
_AREA = re.compile(r"m²|\bm2\b|mètres? carrés|hectares?|\bkm²", re.IGNORECASE)
_FREQUENCY = re.compile(
    r"\btous les (?:\w+\s+)?(?:ans|mois|jours|semaines|trimestres|semestres|années|annees)\b"
    r"|\bchaque (?:année|annee|an|mois|semaine|jour|trimestre|semestre)\b|\bfois par\b"
    r"|\bpar (?:an|mois|semaine|jour)\b|\bannuellement\b"
    r"|\b(?:annuel|mensuel|hebdomadaire|quotidien|trimestriel|semestriel|biennal|bisannuel)"
    r"(?:le)?s?\b",
    re.IGNORECASE,
)
