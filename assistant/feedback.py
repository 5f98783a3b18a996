"""Votes on answers (thumbs up/down in the web chat, with an optional comment), kept in SQLite.

The file (`Settings.feedback_path`, by default `<index_dir>/feedback.sqlite`) lives beside the
index generations, never inside one: rebuilding or updating the index keeps every vote.

    store = FeedbackStore(settings.feedback_path)
    vote_id = store.record(Feedback("Question ?", "Réponse [1]", "down",
                                    citations=(Citation("a.txt", 10, 200),)))
    store.update(vote_id, comment="La date est fausse.")
    lines = store.export(only="down")   # question lines in the dev-set format (dicts)

`export` turns votes into lines of the dev-set JSON-lines format read by `assistant eval`
(`id`, `question`, `sources`, `answer_pattern`, `kind`), with `kind` "feedback" and the vote,
comment, answer and cited articles kept for whoever triages them: set `kind` to "fact" or
"out_of_scope" and write an `answer_pattern` before evaluating with them.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .errors import AssistantError, ConfigError

VOTES = ("up", "down")
EXPORT_CHOICES = ("all", "up", "down")
MAX_COMMENT_CHARS = 2000
_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    citations TEXT NOT NULL,          -- JSON: [{"source", "start", "end"}, ...] in [n] order
    vote TEXT NOT NULL CHECK (vote IN ('up', 'down')),
    comment TEXT NOT NULL DEFAULT '',
    in_corpus INTEGER NOT NULL,       -- 0: the assistant declined to answer
    mode TEXT NOT NULL,               -- extractive | llm
    model TEXT NOT NULL,              -- embedding model of the index
    generation TEXT NOT NULL          -- index generation that answered
);
"""


@dataclass(frozen=True)
class Citation:
    """A cited passage: its article and character offsets in the article's text."""

    source: str
    start: int
    end: int


@dataclass(frozen=True)
class Feedback:
    """One vote on one answer."""

    question: str
    answer: str
    vote: str  # "up" | "down"
    citations: tuple[Citation, ...] = ()
    comment: str = ""
    in_corpus: bool = True
    mode: str = ""
    model: str = ""
    generation: str = ""
    created_at: str = ""  # set by `FeedbackStore.record` (UTC, ISO 8601)
    id: int | None = None  # set by `FeedbackStore.record`

    def __post_init__(self) -> None:
        if self.vote not in VOTES:
            raise ValueError(f"vote={self.vote!r}: up or down")

    def dev_line(self) -> dict[str, Any]:
        """This vote as a question line of the dev-set format (see the module docstring).

        `sources` lists the cited articles (file stems) only when the vote is up and the
        assistant answered: a down vote says nothing sure about where the answer is."""
        cited = list(dict.fromkeys(PurePosixPath(c.source).stem for c in self.citations))
        trusted = self.vote == "up" and self.in_corpus
        return {
            "id": f"feedback-{self.id}", "question": self.question,
            "sources": cited if trusted else [], "answer_pattern": None, "kind": "feedback",
            "vote": self.vote, "comment": self.comment, "answer": self.answer,
            "cited_sources": cited, "in_corpus": self.in_corpus, "created_at": self.created_at,
            "mode": self.mode, "model": self.model, "generation": self.generation,
        }


@dataclass
class FeedbackStore:
    """The votes in one SQLite file; each call opens its own connection (thread-safe)."""

    path: Path
    timeout: float = field(default=10.0, repr=False)

    def record(self, feedback: Feedback) -> int:
        """Store a new vote; returns its id."""
        now = _now()
        with self._connect(create=True) as db:
            cursor = db.execute(
                "INSERT INTO feedback (created_at, updated_at, question, answer, citations, vote,"
                " comment, in_corpus, mode, model, generation) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (feedback.created_at or now, now, feedback.question, feedback.answer,
                 _dump_citations(feedback.citations), feedback.vote,
                 feedback.comment[:MAX_COMMENT_CHARS], int(feedback.in_corpus), feedback.mode,
                 feedback.model, feedback.generation),
            )
            return int(cursor.lastrowid or 0)

    def update(self, vote_id: int, *, vote: str | None = None, comment: str | None = None
               ) -> None:
        """Change the vote and/or the comment of vote `vote_id` (KeyError if there is none)."""
        if vote is not None and vote not in VOTES:
            raise ValueError(f"vote={vote!r}: up or down")
        with self._connect(create=True) as db:
            cursor = db.execute(
                "UPDATE feedback SET vote = coalesce(?, vote), comment = coalesce(?, comment),"
                " updated_at = ? WHERE id = ?",
                (vote, None if comment is None else comment[:MAX_COMMENT_CHARS], _now(),
                 int(vote_id)),
            )
            if cursor.rowcount == 0:
                raise KeyError(vote_id)

    def delete(self, vote_id: int) -> None:
        """Forget vote `vote_id` (withdrawn in the chat); no error if it is already gone."""
        with self._connect(create=True) as db:
            db.execute("DELETE FROM feedback WHERE id = ?", (int(vote_id),))

    def entries(self, only: str = "all") -> list[Feedback]:
        """The stored votes, oldest first; `only`: "all", "up" or "down"."""
        if only not in EXPORT_CHOICES:
            raise ValueError(f"only={only!r}: all, up or down")
        if not self.path.exists():
            return []
        where, args = ("", ()) if only == "all" else (" WHERE vote = ?", (only,))
        with self._connect(create=False) as db:
            rows = db.execute(
                "SELECT id, created_at, question, answer, citations, vote, comment, in_corpus,"
                f" mode, model, generation FROM feedback{where} ORDER BY id", args,
            ).fetchall()
        return [
            Feedback(id=r[0], created_at=r[1], question=r[2], answer=r[3],
                     citations=_load_citations(r[4]), vote=r[5], comment=r[6],
                     in_corpus=bool(r[7]), mode=r[8], model=r[9], generation=r[10])
            for r in rows
        ]

    def export(self, only: str = "all") -> list[dict[str, Any]]:
        """The votes as dev-set question lines (JSON-ready dicts), oldest first."""
        return [f.dev_line() for f in self.entries(only)]

    @contextmanager
    def _connect(self, *, create: bool) -> Iterator[sqlite3.Connection]:
        """A connection in one transaction; ConfigError (in French, naming the file) when the
        file is not a votes database or cannot be opened (a directory, no permission)."""
        try:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            uri = f"{self.path.resolve().as_uri()}{'' if create else '?mode=ro'}"
            with closing(sqlite3.connect(uri, uri=True, timeout=self.timeout)) as db:
                if create:
                    db.executescript(_SCHEMA)
                with db:  # one transaction, committed on success
                    yield db
        except OSError as exc:
            raise self._unusable(exc.strerror or exc) from None
        except sqlite3.Error as exc:
            if self.path.is_dir():
                raise self._unusable("c'est un dossier") from None
            if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                raise AssistantError(f"Fichier de votes occupé par un autre programme : "
                                     f"{self.path}. Réessayez dans un instant.") from None
            raise self._unusable(f"ce n'est pas une base de votes ; SQLite : {exc}") from None

    def _unusable(self, why: object) -> ConfigError:
        return ConfigError(
            f"Fichier de votes inutilisable : {self.path} ({why}). Indiquez un autre fichier "
            "avec --db FICHIER ou ASSISTANT_FEEDBACK_DB."
        )


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _dump_citations(citations: tuple[Citation, ...]) -> str:
    return json.dumps([{"source": c.source, "start": c.start, "end": c.end} for c in citations],
                      ensure_ascii=False)


def _load_citations(raw: str) -> tuple[Citation, ...]:
    return tuple(Citation(str(c["source"]), int(c["start"]), int(c["end"]))
                 for c in json.loads(raw or "[]"))
