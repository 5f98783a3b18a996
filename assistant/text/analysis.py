"""French text analysis, the one definition for documents and questions (PyStemmer "french").

Analysis: lower-case, typographic apostrophes to `'`, elisions stripped (l', d', qu', jusqu'...),
NBSP/NNBSP as spaces, `œ`/`æ` expanded, stopwords removed, Snowball French stemming, then accent
folding (the stemmer needs the accents, the index should not care about them).
"""

from __future__ import annotations

import json
import re
import unicodedata
from functools import lru_cache
from importlib import resources
from typing import Any

ANALYZER_VERSION = 2

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u00b4": "'",
                              "`": "'", "\u00a0": " ", "\u202f": " ", "\u2009": " "})
#: Words elided before a vowel ("l'État", "jusqu'à"): the one list every French rule uses.
ELIDED = ("l", "d", "j", "m", "n", "s", "t", "c", "qu", "jusqu", "lorsqu", "puisqu", "quoiqu",
          "presqu")
_ELISION = re.compile(r"\b(?:" + "|".join(ELIDED) + r")'", re.I)
_ELIDED_START = re.compile(r"^(?:" + "|".join(ELIDED) + r")['\u2019\u2018\u02bc]", re.I)
_TOKEN = re.compile(r"\w+", re.UNICODE)

# Snowball's French stopword list, plus question words that carry no topic.
STOPWORDS = frozenset("""
au aux avec ce ces dans de des du elle en et eux il ils je la le les leur lui ma mais me même
mes moi mon ne nos notre nous on ou par pas pour qu que qui sa se ses son sur ta te tes toi ton
tu un une vos votre vous c d j l à m n s t y été étée étées étés étant étante étants étantes
suis es est sommes êtes sont serai seras sera serons serez seront serais serait serions seriez
seraient étais était étions étiez étaient fus fut fûmes fûtes furent sois soit soyons soyez
soient fusse fusses fût fussions fussiez fussent ayant ayante ayantes ayants eu eue eues eus ai
as avons avez ont aurai auras aura aurons aurez auront aurais aurait aurions auriez auraient
avais avait avions aviez avaient eut eûmes eûtes eurent aie aies ait ayons ayez aient eusse
eusses eût eussions eussiez eussent ceci cela celà cet cette ici ils les leurs quel quels quelle
quelles sans soi combien comment pourquoi quand où quoi lequel laquelle lesquels lesquelles
est-ce qu'est-ce a-t-il a-t-elle ont-ils depuis
""".split())


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("french")


@lru_cache(maxsize=65536)
def fold_accents(word: str) -> str:
    """`word` without its accents ("écoles" -> "ecoles"); words, names and questions come back
    often: cached."""
    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))


def strip_elision(word: str) -> str:
    """A written word without its elided article or pronoun, case kept ("L’État" -> "État")."""
    return _ELIDED_START.sub("", word)


def words(text: str) -> list[str]:
    """Lower-cased words with elisions removed, before stopwords and stemming."""
    text = text.translate(_APOSTROPHES).lower().replace("œ", "oe").replace("æ", "ae")
    text = _ELISION.sub(" ", text)
    return _TOKEN.findall(text.replace("_", " "))


def analyze(text: str) -> list[str]:
    """Index terms of `text`: the same function for documents and questions. A plural "s" is
    dropped before stemming: Snowball alone stems "clusters" to "cluster" but "cluster" to
    "clust", and "emplois" stays apart from "emploi"."""
    kept = [w for w in words(text) if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]
    singular = [w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w
                for w in kept]
    return [fold_accents(s) for s in _stemmer().stemWords(singular)]


#: `analyzed` caches pieces of text up to CACHED_CHARS long (a sentence, a title, a passage
#: with its neighbours, a paragraph), never whole articles, and CACHED_PIECES of them: ~30 MB
#: at worst (every piece 1000 characters of distinct words), a few MB for real sentences; one
#: question analyses ~50-100 new pieces (median ~200 characters).
CACHED_CHARS = 1000
CACHED_PIECES = 2048


def analyzed(text: str) -> frozenset[str]:
    """The set of analyzed terms of a text. Analysis is word by word, so a long text is the
    union of its lines; each short piece is cached (the same sentences and paragraphs come back
    question after question), a long line is analysed afresh."""
    if len(text) <= CACHED_CHARS:
        return _analyzed_piece(text)
    terms: set[str] = set()
    for line in text.splitlines():
        if len(line) <= CACHED_CHARS:
            terms |= _analyzed_piece(line)
        else:
            terms.update(analyze(line))
    return frozenset(terms)


@lru_cache(maxsize=CACHED_PIECES)
def _analyzed_piece(text: str) -> frozenset[str]:
    return frozenset(analyze(text))


def analyzer_description() -> dict[str, Any]:
    return {
        "name": "french-snowball",
        "version": ANALYZER_VERSION,
        "stopwords": len(STOPWORDS),
        "elisions": True,
        "accent_folding": "after-stemming",
    }


def dump_tokens(tokens: list[str]) -> str:
    return json.dumps(tokens, ensure_ascii=False)


def load_tokens(value: str) -> list[str]:
    return list(json.loads(value))


def data_lines(name: str) -> list[str]:
    """The lines of the word list `assistant/data/<name>`, its "#" comments left out."""
    text = resources.files("assistant").joinpath("data", name).read_text("utf-8")
    return [line for line in text.splitlines() if line.strip() and not line.startswith("#")]


def data_entries(name: str) -> list[tuple[str, list[str]]]:
    """The "word: words" lines of the word list `assistant/data/<name>`."""
    out = []
    for line in data_lines(name):
        word, sep, values = line.partition(":")
        if sep:
            out.append((word.strip(), values.split()))
    return out
