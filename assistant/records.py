"""Typed records passed between the parts of the pipeline."""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

#: A citation in an answer's text: "[1]", "[1, 2]" (the numbers in group 1); written by the
#: answerers (`cite`), read by whoever shows the answer.
CITATION_MARK = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")


def cite(number: int) -> str:
    """The marker of citation `number` (1-based) in an answer's text."""
    return f"[{number}]"


@dataclass(frozen=True)
class Article:
    """One cleaned article. `text` is the cleaned text every chunk offset points into."""

    source: str  # path relative to the corpus directory, with forward slashes
    title: str
    text: str
    sha256: str  # hash of the raw file bytes: what incremental updates compare
    date: str | None = None  # ISO date (YYYY-MM-DD) when the article states one
    url: str | None = None
    author: str | None = None
    # PDFs only: offset in `text` where each page begins (page n starts at page_starts[n - 1]).
    page_starts: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Chunk:
    """A slice of an article's cleaned text: `article.text[start:end] == text`."""

    source: str
    ordinal: int
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Passage:
    """One search result."""

    chunk_id: int
    score: float
    text: str
    source: str
    title: str
    start: int
    end: int
    page: int | None = None  # PDFs: the page (from 1) on which the passage starts...
    page_end: int | None = None  # ...and the one on which it ends

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict; `page` and `page_end` only for a paged document (PDF)."""
        data = asdict(self)
        if self.page is None:
            del data["page"], data["page_end"]
        return data


@dataclass(frozen=True)
class Answer:
    """An answer: `text` cites passages as [n], `citations[n-1]` is passage n."""

    text: str
    citations: list[Passage] = field(default_factory=list)
    in_corpus: bool = True
    notice: str | None = None  # e.g. "LLM indisponible, réponse extractive"
    leads: list[Passage] = field(default_factory=list)  # closest articles when refused
    # the fact asked, verbatim from the first cited sentence ("17 000 m²"), when the question
    # asks a name, a person, a figure, an amount, an area, a date or a place; `text` opens
    # with it in bold ("**17 000 m²** [1]")
    short: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "answer": self.text,
            "short_answer": self.short,
            "in_corpus": self.in_corpus,
            "citations": [p.to_dict() for p in self.citations],
            "notice": self.notice,
            "leads": [p.to_dict() for p in self.leads],
        }


def page_at(page_starts: Sequence[int] | None, offset: int) -> int | None:
    """The page (from 1) holding character `offset` of a text whose pages begin at `page_starts`;
    None for a text without pages. An empty page shares its start with the next page, which wins."""
    if not page_starts:
        return None
    return max(1, bisect_right(page_starts, offset))
