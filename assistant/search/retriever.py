"""Hybrid retrieval over one loaded generation: French BM25, dense chunks and dense sentences.

Candidates come from three legs, `candidates` each: BM25 over chunks, cosine over chunk vectors,
and cosine over sentence vectors (every sentence of every article is an index row, embedded with
its article's title; a sentence hit proposes the chunks holding it). Every candidate then gets
every signal, computed exactly:

    lexical   BM25 score of the chunk (title included)
    dense     cosine of the chunk's vector with the question's
    sentence  the best cosine among the sentences mostly inside the chunk

each min-max normalised over the candidates, and the fused score is their weighted sum
(`1 - dense_weight - sentence_weight`, `dense_weight`, `sentence_weight`), or, with
`fusion="fitted"`, the softmax of a conditional logit fitted on our own questions over these
signals and a few more (`fusion.py`; not the default: see there). The lexical weight is
first scaled by its *reach*, the share of the question's ordinary words (names aside) that some
chunk holds, and what it loses goes to the two vector signals: BM25 cannot match the words of a
paraphrase or of an English question, and ranks such a question's passages by the few words it
does know (often the article's names, which every chunk of it shares through its title). The
sentence signal finds the one sentence that answers a paraphrased or English question inside a
chunk whose other sentences speak of something else; the answerer reuses the same stored
sentence vectors, so a question is embedded once (and that vector is cached for a repeated
question).

Two corrections follow, measured on the dev and held-out question files (docs/how-it-works.md).
A fourth signal tells the passages of one article apart (`PASSAGE_WEIGHT`). The three above also
measure how well the *article* matches: the title is indexed with every chunk and every sentence,
and an article's opening chunk (title and lead) summarises all of it, so it matches a question
about any of its facts lexically and densely, often better than the chunk holding the answer.
The `passage` signal only counts what distinguishes a chunk within its article: the question's
terms present in the chunk, leaving out those of the article's title (they identify the article,
not the passage), each weighted by its IDF over the collection times its IDF over the article's
own chunks (a word found in most of the article's chunks, its topic, says little about where the
answer is). And a chunk whose article never mentions a name of the question (a place, a body)
loses `NAME_PENALTY` times the share of such names.

For `search` (`Settings.article_weight`; the answers read the fusion without it), a chunk is
then raised towards its article's best candidate: a question that describes its topic instead of
naming it ("le nouveau réseau numérique haut-rhinois") finds the article by its lead or another
passage, and the passage holding the fact, which shares none of those words, by its article. On
our own questions (`bench/data/`, 3,635 answerable with their typed twins; the evaluation files
never read), in the fusion's order: right passage first unchanged (0.802: an article's best
chunk keeps its score), in the top 5 0.954 -> 0.959 / 0.961 / 0.959 / 0.956 with a weight of 0.5
/ 1 / 1.5 / 3 (paraphrases 0.858 -> 0.876 of 655 at 1). The answers do without it: on the dev
files it moved their refusals (docs/benchmarks.md).
"""

from __future__ import annotations

import math
import threading
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config import Settings
from ..embed.base import Embedder
from ..errors import REBUILD_HINT, IndexCorruptError, IndexMismatchError
from ..index.catalog import CatalogReader
from ..index.dense.base import DenseStore, IdSet
from ..index.dense.factory import open_dense
from ..index.lexical.base import LexicalStore, idf
from ..index.lexical.factory import open_lexical
from ..index.manifest import check_compatible
from ..index.served import open_catalog, served
from ..records import Passage
from ..text.analysis import analyzed
from ..text.question import matches
from ..text.reading import Question
from ..text.sentences import fact_score, mostly_inside, sentence_text
from .filters import Filters, Selection, select
from .fusion import Fusion, fitted_fusion

PASSAGE_WEIGHT = 0.1  # weight of the within-article `passage` signal (module docstring)
NAME_PENALTY = 0.2  # taken off a chunk per share of the question's names its article lacks
FACT_BONUS = 0.08  # added to a sentence's cosine when it holds the kind of fact asked
RERANK = 30  # candidates (by BM25 + chunk cosine) also scored by their best sentence
PROPOSED_SENTENCES = 10  # the closest sentences propose their chunks as candidates
QUERY_CACHE = 256  # question vectors kept (a chat's follow-ups and answers reuse them)
RESTRICTIONS = 32  # filters resolved and kept (a chat asks many questions under one filter)
ARTICLE_TEXTS = 32  # article texts kept (one question reads those of its passages, ~5)
ARTICLE_TERMS = 256  # articles whose analysed terms are kept (`ArticleTerms`)
ARTICLE_CHARS = 4_000_000  # ... and their characters at most (a longer text is never kept)


@dataclass(frozen=True)
class Sentence:
    """One sentence row: `article_text[start:end]`, and its id in the sentence vectors."""

    id: int
    source: str
    start: int
    end: int


@dataclass(frozen=True)
class ArticleTerms:
    """An article's analysed terms, for the within-article signals."""

    chunks: dict[int, frozenset[str]]  # chunk id -> its terms, less those of the title
    mentioned: frozenset[str]  # every term of the title and the text


@dataclass(frozen=True)
class Restriction:
    """What a filter (`filters.py`) lets a search see: the rows of its articles."""

    selection: Selection
    chunks: IdSet  # allowed chunk ids (dense and lexical)
    sentences: IdSet  # allowed sentence ids


@dataclass
class LoadedIndex:
    """One generation, opened for reading: its catalog and its three stores."""

    name: str  # the generation's name
    where: str  # the index directory, or the Qdrant it is served from
    manifest: dict[str, Any]
    db: CatalogReader
    dense: DenseStore  # chunk vectors
    sentences: DenseStore  # sentence vectors
    lexical: LexicalStore  # BM25 over chunks

    @classmethod
    def open(cls, settings: Settings) -> LoadedIndex:
        generation = served(settings)
        manifest, where = generation.manifest, f"{generation.where} ({generation.name})"
        check_compatible(manifest, settings)
        stores = manifest["stores"]
        dense = open_dense(settings, "chunks", stores.get("chunks"))
        sentences = open_dense(settings, "sentences", stores.get("sentences"))
        lexical = open_lexical(settings, stores.get("lexical"))
        catalog = open_catalog(settings, generation, dense, sentences)
        catalog.check()
        dense.load()  # now: a damaged file is refused at once, not at the first question
        sentences.load()
        counts = catalog.counts()
        expected = manifest["corpus"].get("chunks")
        if not (len(dense) == len(lexical) == counts["chunks"] == expected):
            raise IndexCorruptError(
                f"Index incohérent dans {where} : {len(dense)} vecteurs, {len(lexical)} "
                f"documents BM25, {counts['chunks']} passages en base, {expected} annoncés. "
                f"{REBUILD_HINT}")
        if not (len(sentences) == counts["sentences"] == manifest["catalog"].get("sentences")):
            raise IndexCorruptError(
                f"Index incohérent dans {where} : {len(sentences)} vecteurs de phrases, "
                f"{counts['sentences']} phrases en base. {REBUILD_HINT}")
        dimension = manifest["embedding"].get("dimension")
        if (len(dense) and dense.dimension != dimension) or (
                len(sentences) and sentences.dimension != dimension):
            raise IndexCorruptError(f"Dimension inattendue des vecteurs dans {where}. "
                                    f"{REBUILD_HINT}")
        return cls(generation.name, generation.where, manifest, catalog, dense, sentences,
                   lexical)

    def close(self) -> None:
        self.db.close()


class HybridRetriever:
    def __init__(self, index: LoadedIndex, embedder: Embedder, settings: Settings) -> None:
        if len(index.dense) and embedder.dimension != index.dense.dimension:
            raise IndexMismatchError(
                f"Le modèle donne des vecteurs de dimension {embedder.dimension}, l'index "
                f"{index.dense.dimension}. {REBUILD_HINT}"
            )
        self.index = index
        self.embedder = embedder
        self.settings = settings
        self._queries: OrderedDict[str, np.ndarray] = OrderedDict()
        self._queries_lock = threading.Lock()
        self._restrictions: OrderedDict[Filters, Restriction] = OrderedDict()
        self._articles: OrderedDict[str, str | None] = OrderedDict()
        self._article_chars = 0
        self._terms: OrderedDict[str, ArticleTerms] = OrderedDict()

    def spelled(self, question: Question) -> Question:
        """The question with its words typed without accents spelt as the articles write them
        (`Question.spelled`, against the lexical store's terms)."""
        cache: dict[str, int] = {}

        def frequency(term: str) -> int:
            if term not in cache:
                cache[term] = self.index.lexical.document_frequency(term)
            return cache[term]

        return question.spelled(frequency)

    def idf(self, term: str) -> float:
        return idf(self.index.lexical, term)

    def articles(self) -> list[dict[str, Any]]:
        """The indexed articles (source, title, date, url, chunks), by source."""
        return self.index.db.articles()

    def article_text(self, source: str) -> str | None:
        """The cleaned text of article `source` (None if unknown). The last `ARTICLE_TEXTS` are
        kept: search, answer and decision read the same few articles for one question, and a
        generation never changes (a new one gets a new retriever)."""
        with self._queries_lock:
            if source in self._articles:
                self._articles.move_to_end(source)
                return self._articles[source]
        text = self.index.db.article_text(source)
        size = len(text or "")
        if size > ARTICLE_CHARS:
            return text
        with self._queries_lock:
            if source not in self._articles:
                self._articles[source] = text
                self._article_chars += size
            while len(self._articles) > ARTICLE_TEXTS or self._article_chars > ARTICLE_CHARS:
                _, dropped = self._articles.popitem(last=False)
                self._article_chars -= len(dropped or "")
        return text

    def query_vector(self, question: str) -> np.ndarray:
        """The question's normalised vector (query prompt), computed once per distinct text."""
        with self._queries_lock:
            vector = self._queries.get(question)
            if vector is not None:
                self._queries.move_to_end(question)
                return vector
        vector = np.asarray(self.embedder.embed_query(question), dtype=np.float32)
        with self._queries_lock:
            self._queries[question] = vector
            while len(self._queries) > QUERY_CACHE:
                self._queries.popitem(last=False)
        return vector

    def restrict(self, filters: Filters) -> Restriction:
        """What `filters` lets a search see, asked of the catalog once per distinct filter (the
        generation never changes); QuestionError for unknown articles or an empty selection."""
        with self._queries_lock:
            found = self._restrictions.get(filters)
            if found is not None:
                self._restrictions.move_to_end(filters)
                return found
        selection = select(filters, self.index.db.article_dates())
        chunk_ids, sentence_ids = self.index.db.ids_of_articles(selection.sources)
        found = Restriction(selection, IdSet(chunk_ids), IdSet(sentence_ids))
        with self._queries_lock:
            self._restrictions[filters] = found
            while len(self._restrictions) > RESTRICTIONS:
                self._restrictions.popitem(last=False)
        return found

    # -- sentences ---------------------------------------------------------------------------
    def sentences(self, sources: Iterable[str]) -> dict[str, list[Sentence]]:
        """source -> its sentence rows, in reading order."""
        rows = self.index.db.sentences_of(sources)
        return {src: [Sentence(i, src, a, b) for i, a, b in spans] for src, spans in rows.items()}

    def sentence_similarity(self, question: str, sentences: Sequence[Sentence]) -> np.ndarray:
        """Cosine of each sentence's stored vector (title + sentence) with the question."""
        if not sentences or self.settings.dense_weight + self.settings.sentence_weight <= 0:
            return np.zeros(len(sentences), dtype=np.float32)
        ids = np.fromiter((s.id for s in sentences), dtype=np.int64, count=len(sentences))
        return np.asarray(self.index.sentences.vectors(ids) @ self.query_vector(question))

    # -- search ------------------------------------------------------------------------------
    def search(self, question: str | Question, k: int, filters: Filters | None = None, *,
               article_weight: float = 0.0) -> list[Passage]:
        """The k best passages; with `filters`, only from the articles they let through; with
        `article_weight`, each raised towards its article's best (`weighted`)."""
        scored = self.score(question, k, filters, article_weight=article_weight)
        rows = self.index.db.chunks_by_id(cid for cid, _ in scored)
        return [
            Passage(cid, round(float(s), 6), *rows[cid]) for cid, s in scored if cid in rows
        ]

    def score(self, question: str | Question, k: int, filters: Filters | None = None, *,
              article_weight: float = 0.0) -> list[tuple[int, float]]:
        """The k best (chunk id, fused score), best first; with `filters`, every leg looks at
        the chunks and sentences of the allowed articles only."""
        q = question if isinstance(question, Question) else self.spelled(Question.read(question))
        found = self.candidate_signals(q, k, filters)
        if found is None:
            return []
        chunk_ids, signals = found
        fusion = self.fusion()
        if fusion is not None and all(name in signals for name in fusion.features):
            fused = fusion.scores(signals)
        else:
            fused = self.weighted(q, signals, article_weight=article_weight)
        order = np.lexsort((chunk_ids, -fused))[:k]  # ties broken by chunk id: deterministic
        return [(int(chunk_ids[i]), float(fused[i])) for i in order]

    def weighted(self, q: Question, signals: dict[str, np.ndarray], *,
                 article_weight: float = 0.0) -> np.ndarray:
        """The candidates' scores under the settings' weights (module docstring); with
        `article_weight`, each raised towards its article's best candidate's (`_with_article`)."""
        w_lex, w_dense, w_sentence = self._weights(q)
        own = np.asarray(w_lex * signals["lexical"] + w_dense * signals["dense"]
                         + w_sentence * signals.get("sentence", 0.0)
                         + PASSAGE_WEIGHT * signals["passage"] - NAME_PENALTY * signals["unnamed"])
        return _with_article(own, signals["article"], article_weight) if article_weight else own

    def fusion(self) -> Fusion | None:
        """The fitted fusion (`fusion.py`) when the settings ask for it and the embedding model
        has one."""
        s = self.settings
        if s.fusion != "fitted" or s.dense_weight <= 0 or s.sentence_weight <= 0:
            return None
        return fitted_fusion(s.embedding_model)

    def candidate_signals(self, question: str | Question, k: int,
                          filters: Filters | None = None
                          ) -> tuple[np.ndarray, dict[str, np.ndarray]] | None:
        """The candidate chunks of a search and their signals (`fusion.FUSION_FEATURES`; the
        sentence ones only when sentence vectors are used), None when there is none."""
        q = question if isinstance(question, Question) else self.spelled(Question.read(question))
        lexical = self.index.lexical
        n = len(lexical)
        if n == 0:
            return None
        only = self.restrict(filters) if filters else None
        pool = n if only is None else len(only.chunks)
        if pool == 0:
            return None
        depth = min(pool, max(self.settings.candidates, k))
        terms = list(q.terms)
        w_lex, w_dense, w_sentence = self._weights(q)
        allowed = None if only is None else only.chunks
        cids = {int(c) for c in lexical.search(terms, depth, allowed)[0]}
        proposed: set[int] = set()
        query = self.query_vector(q.text) if w_dense + w_sentence > 0 else None
        if query is not None:
            cids.update(int(c) for c in self.index.dense.search(query, depth, allowed))
            if w_sentence > 0 and len(self.index.sentences):
                proposed = self._chunks_of_best_sentences(query, PROPOSED_SENTENCES, only)
                cids |= proposed
        if not cids:
            return None
        chunk_ids = np.array(sorted(cids), dtype=np.int64)
        lex = lexical.score(terms, chunk_ids).astype(np.float64)
        dense = np.zeros(len(chunk_ids))
        if query is not None:
            dense = (self.index.dense.vectors(chunk_ids) @ query).astype(np.float64)
        spans: dict[int, tuple[str, int, int]] | None = None  # looked up once, for all below
        sentence: dict[str, np.ndarray] = {}
        if w_sentence > 0 and query is not None:
            # The sentence signal costs a lookup per sentence: computed for the best candidates
            # of the first two legs and the chunks the closest sentences proposed.
            first = w_lex * _minmax(lex) + w_dense * _minmax(dense)
            keep = np.zeros(len(chunk_ids), dtype=bool)
            keep[np.argsort(-first, kind="stable")[:RERANK]] = True
            keep |= np.isin(chunk_ids, np.fromiter(proposed, dtype=np.int64, count=len(proposed)))
            chunk_ids, lex, dense = chunk_ids[keep], lex[keep], dense[keep]
            spans = self.index.db.chunk_locations(int(c) for c in chunk_ids)
            best, cosine, fact = self._best_sentence(chunk_ids, q, spans)
            sentence = {"sentence": _minmax(best), "cosine": _minmax(cosine), "fact": fact}
        if spans is None:
            spans = self.index.db.chunk_locations(int(c) for c in chunk_ids)
        passage, unnamed = self._within_articles(chunk_ids, q, spans)
        reach = self._lexical_reach(q)
        signals = {"lexical": _minmax(lex), "dense": _minmax(dense), **sentence,
                   "passage": _minmax(passage), "unnamed": unnamed,
                   "opening": self._opening(chunk_ids, spans),
                   "article": _article_numbers(chunk_ids, spans)}
        for name in ("lexical", "dense", "sentence"):
            if name in signals:
                signals[f"{name}_reach"] = signals[name] * reach
        return chunk_ids, signals

    def _weights(self, q: Question) -> tuple[float, float, float]:
        """(lexical, dense, sentence) weights of the fusion for this question: the settings',
        the lexical one times its `reach` (module docstring), what it loses going to the two
        vector signals in proportion of theirs."""
        w_dense, w_sentence = self.settings.dense_weight, self.settings.sentence_weight
        w_lex = 1.0 - w_dense - w_sentence
        if w_dense + w_sentence <= 0 or w_lex <= 0:
            return w_lex, w_dense, w_sentence
        reach = self._lexical_reach(q)
        lowered = w_lex * reach
        grow = (1.0 - lowered) / (w_dense + w_sentence)
        return lowered, w_dense * grow, w_sentence * grow

    def _lexical_reach(self, q: Question) -> float:
        """The share of the question's ordinary words (its names aside) that some chunk holds:
        what BM25 can match of what is asked. Words no article uses are a paraphrase ("surface"
        for "m²") or another language; names only find the article, whose every chunk carries
        its title. 1 for a question made of names only."""
        ordinary = [t for t in dict.fromkeys(q.terms) if t not in q.entities]
        if not ordinary:
            return 1.0
        lexical = self.index.lexical
        return sum(lexical.document_frequency(t) > 0 for t in ordinary) / len(ordinary)

    def _chunks_of_best_sentences(self, query: np.ndarray, depth: int,
                                  only: Restriction | None = None) -> set[int]:
        """Chunks holding the `depth` sentences closest to the question (among those `only`
        allows)."""
        best = self.index.sentences.search(query, depth, None if only is None else only.sentences)
        spans = self.index.db.sentence_spans(int(i) for i in best)
        chunks = self.index.db.chunk_spans(src for src, _, _ in spans.values())
        found: set[int] = set()
        for source, start, end in spans.values():
            found.update(cid for cid, a, b in chunks[source] if mostly_inside(start, end, a, b))
        return found

    def _within_articles(
        self, chunk_ids: np.ndarray, q: Question,
        spans: dict[int, tuple[str, int, int]] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per chunk, the two signals read on its whole article (module docstring):

        passage   what tells it apart from the other chunks of its article: the sum, over the
                  question's terms in the chunk but not in the article's title, of the term's
                  IDF over the collection times its IDF over the article's chunks;
        unnamed   the share of the question's names (`name_terms`: "Reims", "Rubika") that its
                  article, title included, never mentions.

        `spans`: the chunks' locations (`chunk_locations`), when the caller has them.
        """
        if spans is None:
            spans = self.index.db.chunk_locations(int(c) for c in chunk_ids)
        articles = self._article_terms({src for src, _, _ in spans.values()})
        asked = set(q.terms)
        weight = {t: self.idf(t) for t in asked}
        names = q.names
        held: dict[int, frozenset[str]] = {}  # chunk id -> the question's terms it holds
        local_idf: dict[tuple[str, str], float] = {}  # (source, term) -> IDF among its chunks
        missing: dict[str, float] = {}
        for source, article in articles.items():
            own = {cid: found & asked for cid, found in article.chunks.items()}
            held.update(own)
            for t in set().union(*own.values()):
                df = sum(t in found for found in own.values())
                local_idf[source, t] = math.log(1.0 + (len(own) - df + 0.5) / (df + 0.5))
            if names:
                missing[source] = sum(not matches(t, article.mentioned)
                                      for t in names) / len(names)
        source_of = [spans[int(c)][0] for c in chunk_ids]
        passage = np.array([sum(weight[t] * local_idf[src, t] for t in held.get(int(c), ()))
                            for c, src in zip(chunk_ids, source_of)])
        unnamed = np.array([missing.get(src, 0.0) for src in source_of])
        return passage, unnamed

    def _article_terms(self, sources: Iterable[str]) -> dict[str, ArticleTerms]:
        """The terms of each article `sources` names, computed once per article (the last
        `ARTICLE_TERMS` are kept: a generation never changes)."""
        out: dict[str, ArticleTerms] = {}
        with self._queries_lock:
            for source in sources:
                if source in self._terms:
                    self._terms.move_to_end(source)
                    out[source] = self._terms[source]
        missing = sorted(set(sources) - set(out))
        if not missing:
            return out
        titles = self.index.db.titles(missing)
        spans = self.index.db.chunk_spans(missing)
        for source in missing:
            text, title = self.article_text(source) or "", titles.get(source, "")
            topic = analyzed(title)
            out[source] = ArticleTerms(
                {cid: analyzed(text[a:b]) - topic for cid, a, b in spans[source]},
                analyzed(f"{title}\n{text}"))
        with self._queries_lock:
            for source in missing:
                self._terms[source] = out[source]
            while len(self._terms) > ARTICLE_TERMS:
                self._terms.popitem(last=False)
        return out

    def _opening(self, chunk_ids: np.ndarray, spans: dict[int, tuple[str, int, int]]
                 ) -> np.ndarray:
        """Per chunk, 1 when it is its article's first chunk (title and lead), else 0."""
        firsts = {src: next(iter(terms.chunks), None) for src, terms in
                  self._article_terms({src for src, _, _ in spans.values()}).items()}
        return np.array([1.0 if firsts.get(spans[int(c)][0]) == int(c) else 0.0
                         for c in chunk_ids])

    def _best_sentence(self, chunk_ids: np.ndarray, q: Question,
                       spans: dict[int, tuple[str, int, int]] | None = None
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per chunk, among the sentences mostly inside it (0 when none): the best of their
        cosine with the question plus `FACT_BONUS` when the sentence holds the kind of fact
        asked (a figure for "combien / how much", a name for "qui / who", a date for "quand /
        when"), the best cosine, the best fact score. `spans`: the chunks' locations, when the
        caller has them."""
        if spans is None:
            spans = self.index.db.chunk_locations(int(c) for c in chunk_ids)
        by_source = self.sentences(src for src, _, _ in spans.values())
        starts = {src: [s.start for s in rows] for src, rows in by_source.items()}
        owners: list[int] = []
        members: list[Sentence] = []
        for i, cid in enumerate(chunk_ids):
            source, a, b = spans[int(cid)]
            rows = by_source[source]
            first = max(bisect_right(starts[source], a) - 1, 0)
            for s in rows[first:bisect_left(starts[source], b)]:
                if mostly_inside(s.start, s.end, a, b):
                    owners.append(i)
                    members.append(s)
        best, cosine, fact = (np.zeros(len(chunk_ids), dtype=np.float64) for _ in range(3))
        if not members:
            return best, cosine, fact
        scores = self.sentence_similarity(q.text, members).astype(np.float64)
        facts = np.zeros(len(members))
        if q.kind is not None:
            texts = {src: self.article_text(src) or "" for src in by_source}
            facts = np.array([fact_score(q.kind, sentence_text(texts[s.source], (s.start, s.end)),
                                         q.asked) for s in members])
        at = np.asarray(owners)
        np.maximum.at(best, at, scores + FACT_BONUS * facts)
        np.maximum.at(cosine, at, scores)
        np.maximum.at(fact, at, facts)
        return best, cosine, fact


def _article_numbers(chunk_ids: np.ndarray, spans: dict[int, tuple[str, int, int]]
                     ) -> np.ndarray:
    """Per chunk, a number shared by the chunks of one article (which candidates go together;
    not a signal the fusion weighs)."""
    numbers: dict[str, int] = {}
    return np.array([numbers.setdefault(spans[int(c)][0], len(numbers)) for c in chunk_ids],
                    dtype=np.int64)


def _with_article(scores: np.ndarray, article: np.ndarray, weight: float) -> np.ndarray:
    """Each chunk's score raised towards its article's best candidate's: their mean, the
    article's best weighing `weight` (`Settings.article_weight`); an article's best chunk keeps
    its score."""
    best = np.full(int(article.max()) + 1, -np.inf)
    np.maximum.at(best, article, scores)  # per article number, its best candidate's score
    return (scores + weight * best[article]) / (1.0 + weight)


def _minmax(values: np.ndarray) -> np.ndarray:
    lo, hi = float(values.min()), float(values.max())
    if hi - lo < 1e-12:
        return np.ones_like(values) if hi > 0 else np.zeros_like(values)
    return (values - lo) / (hi - lo)
