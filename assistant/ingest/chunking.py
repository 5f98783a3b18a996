"""Split cleaned articles into ~500-character chunks with exact character offsets.

langchain-text-splitters does the splitting (French separators, sentence punctuation kept at the
end of its sentence); offsets are computed here by locating each chunk in the article text, since
the splitter's own `add_start_index` guesses wrong when text repeats.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import Settings
from ..records import Article, Chunk

if TYPE_CHECKING:  # imported when a splitter is made: a search never needs langchain
    from langchain_text_splitters import RecursiveCharacterTextSplitter


def make_splitter(settings: Settings) -> RecursiveCharacterTextSplitter:
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    return RecursiveCharacterTextSplitter(
        separators=[re.escape(s) for s in settings.separators],
        is_separator_regex=True,
        keep_separator="end",
        chunk_size=settings.chunk_size,
        chunk_overlap=settings.chunk_overlap,
        strip_whitespace=True,
    )


def splitter_description(settings: Settings) -> dict[str, Any]:
    """What the manifest records: an index built with other values must be rebuilt."""
    return {
        "splitter": "langchain RecursiveCharacterTextSplitter",
        "chunk_size": settings.chunk_size,
        "chunk_overlap": settings.chunk_overlap,
        "separators": list(settings.separators),
        "keep_separator": "end",
        "title_in_index": "once",
        "min_chars": settings.chunk_min_chars,
        "version": 1,
    }


def chunk_article(article: Article, splitter: RecursiveCharacterTextSplitter, *,
                  min_chars: int = 0) -> list[Chunk]:
    """Chunks of `article.text`, each with `article.text[start:end] == chunk.text`.

    A chunk shorter than `min_chars` (at most half the splitter's chunk size: a heading, an
    interview question, a paragraph's tail that the splitter left alone) is joined to the chunk
    after it (the last one to the chunk before): alone, its few words match a question's words
    too well and it holds no answer.
    """
    size = int(getattr(splitter, "_chunk_size", 0)) or min_chars * 2
    return _join_short(article, _split(article, splitter), min(min_chars, size // 2))


def _join_short(article: Article, chunks: list[Chunk], min_chars: int) -> list[Chunk]:
    out: list[tuple[int, int]] = []
    pending: int | None = None  # start of short chunks waiting for the next one
    for c in chunks:
        start = c.start if pending is None else pending
        if c.end - start < min_chars:
            pending = start
            continue
        pending = None
        out.append((start, c.end))
    if pending is not None:
        if out:
            out[-1] = (out[-1][0], max(out[-1][1], chunks[-1].end))
        else:
            out.append((pending, chunks[-1].end))
    return [Chunk(article.source, i, article.text[a:b], a, b) for i, (a, b) in enumerate(out)]


def _split(article: Article, splitter: RecursiveCharacterTextSplitter) -> list[Chunk]:
    chunks: list[Chunk] = []
    overlap = int(getattr(splitter, "_chunk_overlap", 0))
    start = end = 0
    for piece in splitter.split_text(article.text):
        if not piece.strip():
            continue
        # Where the splitter can have taken it from: not before the previous chunk, at most
        # `chunk_overlap` characters before its end, not ending before it. The first copy from
        # there is never past the right one, so text that repeats cannot push the search beyond
        # it (searching from just after the previous start could, then find nothing).
        found = article.text.find(piece, max(start, end - overlap, end - len(piece)))
        if found < 0:  # never seen; a splitter change would land here, loudly
            raise ValueError(f"chunk not found in {article.source} after offset {start}")
        if chunks and found + len(piece) <= end:
            continue  # inside the previous chunk: the splitter repeated (part of) its overlap
        start, end = found, found + len(piece)
        chunks.append(Chunk(article.source, len(chunks), piece, start, end))
    return chunks


def indexed_text(title: str, chunk_text: str) -> str:
    """What is embedded and BM25-indexed for a chunk (or a sentence): its article title, then its
    text; only once when the text starts with the title (an article's first chunk), so that the
    opening chunk does not match the article's topic twice as well as the others."""
    if chunk_text.startswith(title.strip()):
        return chunk_text
    return f"{title}\n{chunk_text}"


def corpus_indexed_texts(corpus_dir: Path, settings: Settings) -> list[str]:
    """Every readable article's chunks of `corpus_dir`, as the indexer embeds them."""
    from .corpus import load_corpus

    splitter = make_splitter(settings)
    articles, _ = load_corpus(corpus_dir)
    return [indexed_text(a.title, c.text) for a in articles
            for c in chunk_article(a, splitter, min_chars=settings.chunk_min_chars)]


def corpus_indexed_sentences(corpus_dir: Path) -> list[str]:
    """Every readable article's sentence rows of `corpus_dir`, as the indexer embeds them (the
    sentence splitter has no settings)."""
    from ..text.sentences import sentence_text, split_sentences
    from .corpus import load_corpus

    articles, _ = load_corpus(corpus_dir)
    return [indexed_text(a.title, sentence_text(a.text, span)) for a in articles
            for span in split_sentences(a.text)]
