"""French text analysis and the BM25 index (bm25s + PyStemmer "french").

Analysis: lower-case, typographic apostrophes to `'`, elisions stripped (l', d', qu', jusqu'...),
NBSP/NNBSP as spaces, `œ`/`æ` expanded, stopwords removed, Snowball French stemming, then accent
folding (the stemmer needs the accents, the index should not care about them).
"""

from __future__ import annotations

import json
import re
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

ANALYZER_VERSION = 2

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u00b4": "'",
                              "`": "'", "\u00a0": " ", "\u202f": " ", "\u2009": " "})
_ELISION = re.compile(r"\b(?:l|d|j|m|n|s|t|c|qu|jusqu|lorsqu|puisqu|quoiqu|presqu)'", re.I)
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


def fold_accents(word: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))


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


@lru_cache(maxsize=8192)
def analyzed(text: str) -> frozenset[str]:
    """The set of analyzed terms of a text (cached: the same sentences come back often)."""
    return frozenset(analyze(text))


def analyzer_description() -> dict[str, Any]:
    return {
        "name": "french-snowball",
        "version": ANALYZER_VERSION,
        "stopwords": len(STOPWORDS),
        "elisions": True,
        "accent_folding": "after-stemming",
    }


class BM25Index:
    """bm25s over analyzed chunk texts; row i of the index is chunk `ids[i]`."""

    def __init__(self, bm25: Any, ids: np.ndarray) -> None:
        self._bm25 = bm25  # None for an empty corpus (bm25s cannot index zero documents)
        self.ids = ids
        self._vocab: dict[str, int] = bm25.vocab_dict if bm25 is not None else {}
        indptr = bm25.scores["indptr"] if bm25 is not None else np.zeros(1)
        self._df = np.diff(indptr)  # documents per vocabulary term (CSC columns are terms)

    @classmethod
    def build(cls, ids: list[int], token_lists: list[list[str]]) -> BM25Index:
        import bm25s

        if not ids:
            return cls(None, np.zeros(0, dtype=np.int64))
        bm25 = bm25s.BM25()
        bm25.index([toks or [""] for toks in token_lists], show_progress=False)
        return cls(bm25, np.asarray(ids, dtype=np.int64))

    def save(self, directory: Path) -> None:
        if self._bm25 is not None:
            self._bm25.save(str(directory), show_progress=False)
        np.save(directory / "chunk_ids.npy", self.ids, allow_pickle=False)

    @classmethod
    def load(cls, directory: Path) -> BM25Index:
        import bm25s

        ids = np.load(directory / "chunk_ids.npy", allow_pickle=False)
        if len(ids) == 0:
            return cls(None, ids)
        bm25 = bm25s.BM25.load(str(directory), mmap=False, allow_pickle=False, show_progress=False)
        return cls(bm25, ids)

    def __len__(self) -> int:
        return len(self.ids)

    def scores(self, terms: list[str]) -> np.ndarray:
        """BM25 score of every row for the query terms (unknown terms count for nothing)."""
        known = [t for t in terms if t in self._vocab]
        if not known or len(self.ids) == 0:
            return np.zeros(len(self.ids), dtype=np.float32)
        return np.asarray(self._bm25.get_scores(known), dtype=np.float32)

    def idf(self, term: str) -> float:
        """Inverse document frequency of an analyzed term (high for unseen terms)."""
        n = max(len(self.ids), 1)
        df = int(self._df[self._vocab[term]]) if term in self._vocab else 0
        return float(np.log(1.0 + (n - df + 0.5) / (df + 0.5)))

    def describe(self) -> dict[str, Any]:
        return {"documents": len(self.ids), "vocabulary": len(self._vocab)}


def dump_tokens(tokens: list[str]) -> str:
    return json.dumps(tokens, ensure_ascii=False)


def load_tokens(value: str) -> list[str]:
    return list(json.loads(value))
