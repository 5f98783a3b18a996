"""`Assistant`: the one object the CLI, the web chat, the HTTP API and Python users talk to.

It holds the settings, the embedding model (loaded once) and the current index generation; when a
writer publishes a new generation, the next request picks it up (`refresh`), while requests in
flight finish on the generation they started with.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from .allocator import release_free_memory
from .config import Settings
from .embed.backends import make_embedder
from .embed.base import Embedder
from .errors import QuestionError
from .index.manifest import check_compatible
from .index.served import Served, open_catalog, served, served_marker
from .records import Answer, Passage
from .search.filters import Filters, Selection
from .search.retriever import HybridRetriever, LoadedIndex
from .text.reading import Question
from .timeline import Timeline

if TYPE_CHECKING:
    from .index.builder import UpdateReport

History = list[dict[str, str]]  # [{"role": "user" | "assistant", "content": "..."}]


class Observer(Protocol):
    """Told what each question cost (e.g. to export metrics), from the thread that did it.

    Stages: "search" (a whole retrieval, the question's embedding included), "answer" (the
    answerer, from passages to the final answer, its own embeddings included) and "embed" (each
    call to the embedding model of this assistant: questions, candidate sentences, uploads).
    """

    def stage(self, name: str, seconds: float) -> None: ...

    def answered(self, answer: Answer) -> None: ...


class Assistant:
    def __init__(self, settings: Settings, retriever: HybridRetriever) -> None:
        self.settings = settings
        self._retriever = retriever
        self._marker = served_marker(settings)
        self._lock = threading.Lock()
        self._observers: tuple[Observer, ...] = ()

    @classmethod
    def load(
        cls, settings: Settings | None = None, *, embedder: Embedder | None = None,
        one_shot: bool = False,
    ) -> Assistant:
        """Open the current index (errors name the command that fixes them) and the model.

        `one_shot`: this process answers one question and exits (`assistant ask`): the model
        is not warmed up for other question lengths, and loads in a thread (`make_embedder`)
        while the index opens (after a check of its manifest, so that a missing or mismatched
        index is reported before a first start's model export)."""
        settings = settings or Settings.from_env()
        if one_shot and embedder is None:
            check_compatible(served(settings).manifest, settings)
            embedder = make_embedder(settings, one_shot=True)
        index = LoadedIndex.open(settings)
        embedder = embedder or make_embedder(settings)
        return cls(settings, HybridRetriever(index, embedder, settings))

    # -- retrieval ----------------------------------------------------------------------------
    @property
    def retriever(self) -> HybridRetriever:
        self.refresh()
        return self._retriever

    def search(self, question: str, k: int | None = None, *, sources: Sequence[str] | None = None,
               since: str | None = None, until: str | None = None) -> list[Passage]:
        """The k best passages. With `settings.rerank` (the default), the fusion's best
        max(k, settings.k) are reordered by the answer's pick head, the one whose sentence
        states what is asked first, each scored by that sentence's pick probability
        (`ExtractiveAnswerer.ordered`), then cut to k (a smaller k never reorders). `sources`
        (article file names, with or without extension), `since` and `until` (YYYY-MM-DD,
        inclusive) restrict them: see `selection`."""
        filters = Filters.parse(sources, since, until)
        retriever = self.retriever
        asked = retriever.spelled(Question.read(self.check_question(question)))
        k = k or self.settings.k
        lift = self.settings.article_weight
        with self._stage("search"):
            if not self.settings.rerank:
                return retriever.search(asked, k, filters, article_weight=lift)
            from .answer.extractive import ExtractiveAnswerer

            # at least k passages are reordered (`settings.k`, an answer's): a smaller k cuts them
            pool = retriever.search(asked, max(k, self.settings.k), filters, article_weight=lift)
            return ExtractiveAnswerer(self.settings).ordered(asked, pool, retriever)[:k]

    def selection(self, *, sources: Sequence[str] | None = None, since: str | None = None,
                  until: str | None = None) -> Selection | None:
        """The articles a filter lets through and what to tell about it (`notice`: undated
        articles left out by a date filter); None without a filter. QuestionError for a bad
        date, an unknown article (with the closest names) or a filter that matches nothing."""
        filters = Filters.parse(sources, since, until)
        return self.retriever.restrict(filters).selection if filters else None

    def refresh(self) -> bool:
        """Switch to a newer generation if one was published; True when it switched."""
        marker = served_marker(self.settings)
        if marker == self._marker:
            return False
        with self._lock:
            if marker == self._marker:
                return False
            index = LoadedIndex.open(self.settings)
            old = self._retriever
            self._retriever = HybridRetriever(index, old.embedder, self.settings)
            self._marker = marker
        release_free_memory()  # what reading the new generation freed (`allocator.py`)
        return True

    def update_index(self, *, wait: float = 30.0) -> UpdateReport:
        """Apply the corpus directory's changes to the index with this assistant's loaded model
        (`index.builder.update`: its writer lock, waiting up to `wait` seconds for another
        writer, and its crash safety), then serve the new generation at once. What uploads and
        the corpus watcher run. What the update freed goes back to the system
        (`allocator.py`), so that a long-running server stays flat."""
        from .index import builder

        embedder = self.retriever.embedder
        try:
            report = builder.update(self.settings, embedder=lambda: embedder, wait=wait)
        except BaseException:
            release_free_memory()  # a failed update freed as much
            raise
        self.refresh()  # serves the new generation, then gives the memory back
        return report

    def check_question(self, question: str) -> str:
        if not isinstance(question, str) or not question.strip():
            raise QuestionError("La question est vide : posez une question en français.")
        question = " ".join(question.split())
        if len(question) > self.settings.max_question_chars:
            raise QuestionError(
                f"La question est trop longue ({len(question)} caractères, maximum "
                f"{self.settings.max_question_chars}) : raccourcissez-la."
            )
        return question

    # -- answers ------------------------------------------------------------------------------
    def ask(self, question: str, history: History | None = None, *, mode: str | None = None,
            k: int | None = None, sources: Sequence[str] | None = None,
            since: str | None = None, until: str | None = None) -> Answer:
        answer: Answer | None = None
        for piece in self.ask_stream(question, history, mode=mode, k=k, sources=sources,
                                     since=since, until=until):
            if isinstance(piece, Answer):
                answer = piece
        assert answer is not None
        return answer

    def ask_stream(self, question: str, history: History | None = None, *,
                   mode: str | None = None, k: int | None = None,
                   sources: Sequence[str] | None = None, since: str | None = None,
                   until: str | None = None) -> Iterator[str | Answer]:
        """Text pieces as they are produced, then the final `Answer`. The filters (as for
        `search`) restrict the passages the answerer sees, hence its citations and leads."""
        from .answer.extractive import contextualize, make_answerer

        question = self.check_question(question)
        filters = Filters.parse(sources, since, until)
        retriever = self.retriever
        # read once, here: search and answer take this record (`text/reading.py`)
        asked = retriever.spelled(Question.read(question, contextualize(question, history)))
        with self._stage("search"):
            passages = retriever.search(asked, k or self.settings.k, filters)
        answerer = make_answerer(self.settings, mode)
        pieces = answerer.stream(asked, passages, retriever)
        notice = retriever.restrict(filters).selection.notice if filters else None
        yield from self._observed(_noticed(pieces, notice) if notice else pieces)

    # -- observers ----------------------------------------------------------------------------
    def add_observer(self, observer: Observer) -> None:
        """Report stage timings and answers to `observer` until `remove_observer`."""
        with self._lock:
            embedder = self._retriever.embedder
            if not isinstance(embedder, _TimedEmbedder):  # kept by `refresh`
                self._retriever.embedder = _TimedEmbedder(embedder, self._emit)
            self._observers = (*self._observers, observer)

    def remove_observer(self, observer: Observer) -> None:
        with self._lock:
            self._observers = tuple(o for o in self._observers if o is not observer)

    def _emit(self, stage: str, seconds: float) -> None:
        for observer in self._observers:
            observer.stage(stage, seconds)

    @contextmanager
    def _stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        if self._observers:
            self._emit(name, time.perf_counter() - start)

    def _observed(self, pieces: Iterator[str | Answer]) -> Iterator[str | Answer]:
        """`pieces`, timing the answerer's own work (not the consumer's) as stage "answer"."""
        spent = 0.0
        try:
            while True:
                start = time.perf_counter()
                piece = next(pieces, None)
                spent += time.perf_counter() - start
                if piece is None:
                    return
                if isinstance(piece, Answer):
                    self._emit("answer", spent)
                    for observer in self._observers:
                        observer.answered(piece)
                yield piece
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()

    # -- index information --------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """The served index (manifest, and the timeline of the articles this assistant serves),
        after checking that a remote store answers (StoreUnavailableError otherwise: a health
        check then reports the replica down)."""
        dates = self.retriever.index.db.article_dates().values()
        status = index_status(self.settings, dates=dates)
        if "qdrant" in status["stores"].values():
            from .index.qdrant_connection import check_reachable

            check_reachable(self.settings)
        if "postgres" in status["stores"].values():
            from .index.postgres_connection import check_reachable as reachable

            reachable(self.settings)
        return status

    def articles(self) -> list[dict[str, Any]]:
        return self.retriever.articles()

    def article_text(self, source: str) -> str | None:
        return self.retriever.article_text(source)


def index_status(settings: Settings, *,
                 dates: Iterable[str | None] | None = None) -> dict[str, Any]:
    """What the CLI's `index status` prints; reads the manifest, and the articles' dates from
    the catalog unless `dates` gives them (no model). `by_month`: articles per month
    ("YYYY-MM", months with articles only), `undated`: articles without a date."""
    generation = served(settings)
    manifest = generation.manifest
    stores = manifest["stores"]
    timeline = Timeline.of(_article_dates(settings, generation) if dates is None else dates)
    return {
        "index_dir": str(settings.index_dir),
        "served_from": generation.where,
        "generation": generation.name,
        "articles": manifest["corpus"]["articles"],
        "chunks": manifest["corpus"]["chunks"],
        "sentences": manifest["catalog"].get("sentences"),
        "model": manifest["embedding"]["model"],
        "backend": manifest["embedding"].get("backend", "torch"),
        "dimension": manifest["embedding"]["dimension"],
        "stores": {role: stores[role].get("backend") for role in stores},
        "faiss_index": (stores["chunks"].get("kind") if stores["chunks"].get("backend") == "faiss"
                        else None),
        "built_at": manifest["built_at"],
        "size_bytes": sum(p.stat().st_size for p in settings.index_dir.rglob("*")
                          if p.is_file()) if settings.index_dir.is_dir() else 0,
        "package_version": manifest["package_version"],
        "by_month": timeline.by_month,
        "undated": timeline.undated,
    }


def _article_dates(settings: Settings, generation: Served) -> list[str | None]:
    """The date of every article of `generation`, read from its catalog."""
    catalog = open_catalog(settings, generation, None, None)  # no chunk / sentence store read
    try:
        return list(catalog.article_dates().values())
    finally:
        catalog.close()


def _noticed(pieces: Iterator[str | Answer], notice: str) -> Iterator[str | Answer]:
    """`pieces`, with `notice` added to the final answer's own."""
    try:
        for piece in pieces:
            if isinstance(piece, Answer):
                piece = replace(piece, notice=f"{piece.notice} ; {notice}" if piece.notice
                                else notice)
            yield piece
    finally:
        close = getattr(pieces, "close", None)
        if close is not None:
            close()


class _TimedEmbedder:
    """An embedder that reports how long each call took (set up by `Assistant.add_observer`)."""

    def __init__(self, inner: Embedder, report: Callable[[str, float], None]) -> None:
        self.inner = inner
        self._report = report

    def embed_query(self, text: str) -> Any:
        start = time.perf_counter()
        try:
            return self.inner.embed_query(text)
        finally:
            self._report("embed", time.perf_counter() - start)

    def embed_passages(self, texts: list[str], *, progress: bool = False) -> Any:
        start = time.perf_counter()
        try:
            return self.inner.embed_passages(texts, progress=progress)
        finally:
            self._report("embed", time.perf_counter() - start)

    def __getattr__(self, name: str) -> Any:  # model_id, dimension, describe, ...
        return getattr(self.inner, name)
