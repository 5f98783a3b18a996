"""HTML for the chat: answers, their numbered sources, the reader, index status. Pure functions,
no Gradio.

Everything that comes from an article or an answer goes through `html.escape`; the only markup in
a message is the one written here. Messages are single HTML blocks without blank lines, so the
chat's Markdown renderer leaves them alone (newlines become `<br>`).

    <div class="answer">escaped answer text [1]</div>
    <details class="sources"><summary>Sources (n)</summary> <div class="source">...</div> </details>

`answer_text` reverses the first line, so the chat history sent back to the assistant holds the
plain answer, never the sources markup; `message_citations` reads the cited passages back (for
votes on the answer).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from typing import Any

from assistant.records import CITATION_MARK, Answer, Passage
from assistant.text.sentences import split_sentences

NOT_IN_CORPUS = (
    "Je ne trouve pas la réponse dans les articles du corpus : essayez de reformuler la "
    "question ou de la préciser (lieu, organisme, date)."
)

_WORD = re.compile(r"\w+", re.UNICODE)
_ANSWER_DIV = re.compile(r'^\s*<div class="answer[^"]*">(.*?)</div>', re.DOTALL)
_TAG = re.compile(r"<[^>]+>")
_SHORT = re.compile(r'<strong class="short-answer">(.*?)</strong>', re.DOTALL)
_READ_BUTTON = re.compile(
    r'<button type="button" class="read-article" value="(?P<start>\d+) (?P<end>\d+) '
    r'(?P<source>[^"]*)"'
)


def escape(text: str) -> str:
    """Escape `text` for HTML and keep its line breaks (as `<br>`, never a blank line)."""
    return html.escape(text, quote=True).replace("\r\n", "\n").replace("\n", "<br>")


# -- answers --------------------------------------------------------------------------------------
def partial_answer(text: str) -> str:
    """The message shown while an answer is being streamed."""
    return f'<div class="answer streaming">{escape(text)}</div>'


def answer_message(answer: Answer) -> str:
    """The complete chat message: answer, notice, then the sources (or leads when refused)."""
    if not answer.in_corpus:
        text = answer.text.strip() or NOT_IN_CORPUS
        parts = [f'<div class="answer not-in-corpus">{escape(text)}</div>']
        if answer.notice:
            parts.append(f'<div class="notice">{escape(answer.notice)}</div>')
        if answer.leads:
            parts.append(leads_block(answer.leads))
        return "\n".join(parts)
    parts = [f'<div class="answer">{answer_body(answer)}</div>']
    if answer.notice:
        parts.append(f'<div class="notice">{escape(answer.notice)}</div>')
    if answer.citations:
        parts.append(sources_block(answer.text, answer.citations))
    return "\n".join(parts)


def answer_body(answer: Answer) -> str:
    """The escaped answer text; its short answer ("**17 000 m²** [1]", the first line) in bold
    on a line of its own, and a bulleted list of items as a list."""
    text = answer.text
    lead = ""
    if answer.short and text.startswith(f"**{answer.short}**"):
        first, _, text = text.partition("\n")
        marks = first[len(answer.short) + 4:]
        lead = (f'<strong class="short-answer">{escape(answer.short)}</strong>{escape(marks)}'
                + ("<br>" if text else ""))
    return lead + escape(text)


def error_message(text: str) -> str:
    """A chat message telling the user what went wrong and what to do (no traceback)."""
    return f'<div class="answer error" role="alert">⚠️ {escape(text)}</div>'


def is_error(message: str) -> bool:
    return message.lstrip().startswith('<div class="answer error"')


def answer_text(message: str) -> str:
    """The plain answer text of a chat message made by `answer_message` / `partial_answer`."""
    match = _ANSWER_DIV.match(message)
    body = match.group(1) if match else _TAG.sub(" ", message.replace("<br>", "\n"))
    body = _SHORT.sub(r"**\1**", body.replace("<br>", "\n"))
    return html.unescape(_TAG.sub("", body)).strip()


def sources_block(answer: str, citations: Sequence[Passage], *, open_: bool = False) -> str:
    """A collapsible `<details>` listing passage n as [n], supporting sentences highlighted."""
    cited = cited_sentences(answer)
    items = "".join(
        source_item(i, p, cited.get(i, [])) for i, p in enumerate(citations, 1)
    )
    attr = " open" if open_ else ""
    return (
        f'<details class="sources"{attr}><summary>Sources ({len(citations)})</summary>'
        f"{items}</details>"
    )


def source_item(number: int, passage: Passage, claims: Sequence[str]) -> str:
    """One cited passage: number, title, file, offsets, text with its supporting sentence marked,
    and the button that opens the article in the reader (see `read_button`)."""
    page = f", page {passage.page}" if passage.page else ""
    return (
        f'<div class="source" id="source-{number}">'
        f'<div class="source-head"><span class="source-num">[{number}]</span> '
        f"<strong>{escape(passage.title)}</strong> — <code>{escape(passage.source)}</code>"
        f' <span class="offsets">caractères {passage.start}–{passage.end}{page}</span> '
        f"{read_button(passage.source, passage.start, passage.end)}</div>"
        f'<blockquote class="passage">{highlight(passage.text, claims)}</blockquote></div>'
    )


def read_button(source: str, start: int, end: int) -> str:
    """The button that opens `source` in the reader with `[start, end)` highlighted. Its value,
    "START END SOURCE", is read by the page's script (`ui/chat.py`) and by `message_citations`
    (the chat's sanitiser drops data-* attributes, it keeps `value`)."""
    return (
        f'<button type="button" class="read-article" value="{int(start)} {int(end)} '
        f'{escape(source)}" title="Ouvrir {escape(source)} à ce passage">'
        f"Lire dans l'article</button>"
    )


def message_citations(message: str) -> list[dict[str, Any]]:
    """The cited passages of a chat message made by `answer_message`, in citation order:
    [{"n": 1, "source": "a.txt", "start": 10, "end": 200}, ...]."""
    return [
        {"n": n, "source": html.unescape(m["source"]), "start": int(m["start"]),
         "end": int(m["end"])}
        for n, m in enumerate(_READ_BUTTON.finditer(_sources_part(message)), 1)
    ]


def _sources_part(message: str) -> str:
    start = message.find('<details class="sources"')
    return message[start:message.find("</details>", start)] if start >= 0 else ""


def leads_block(leads: Sequence[Passage]) -> str:
    """The closest articles when the question is out of the corpus ("Pistes")."""
    seen: dict[str, Passage] = {}
    for p in leads:
        seen.setdefault(p.source, p)
    items = "".join(
        f"<li><strong>{escape(p.title)}</strong> — <code>{escape(p.source)}</code> "
        f"{read_button(p.source, p.start, p.end)}</li>"
        for p in seen.values()
    )
    return (f'<div class="leads"><strong>Pistes</strong> (articles les plus proches) :'
            f"<ul>{items}</ul></div>")


# -- highlighting ---------------------------------------------------------------------------------
def cited_sentences(answer: str) -> dict[int, list[str]]:
    """citation number -> the answer sentences it supports, citation marks removed.

    A citation covers the text written since the previous citation ("S1 [1] S2 [2]",
    "S1. [1] S2. [2]"); adjacent citations ("[1][2]", "[1, 2]") share the same text.
    """
    result: dict[int, list[str]] = {}
    segment_start, pending = 0, ""
    for match in CITATION_MARK.finditer(answer):
        between = answer[segment_start:match.start()]
        if between.strip(" ,;"):
            pending = between
        numbers = [int(n) for n in re.split(r"\s*[,;]\s*", match.group(1))]
        claims = [" ".join(s.split()) for s in _split_sentences(pending)]
        for n in numbers:
            result.setdefault(n, []).extend(c for c in claims if _WORD.search(c))
        segment_start = match.end()
    return result


def supporting_spans(text: str, claims: Iterable[str]) -> list[tuple[int, int]]:
    """The spans of `text` that support `claims`, sorted and merged. Each claim is found
    verbatim (whatever the spacing), else as the passage sentence sharing the most words with
    it (at least half of the claim's words)."""
    spans = []
    sentences = _sentence_spans(text)
    for claim in claims:
        span = None
        for core in (claim.strip(), claim.rstrip(" .!?…\"»”")):
            if span is None and len(core) >= 12:
                span = _locate(text, core)
        if span is None:
            span = _best_sentence(text, sentences, claim)
        if span is not None:
            spans.append(span)
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def highlight(text: str, claims: Sequence[str]) -> str:
    """`text` escaped, with the spans supporting `claims` wrapped in `<mark>`."""
    parts, position = [], 0
    for start, end in supporting_spans(text, claims):
        parts.append(f"{escape(text[position:start])}<mark>{escape(text[start:end])}</mark>")
        position = end
    parts.append(escape(text[position:]))
    return "".join(parts)


def _best_sentence(text: str, sentences: list[tuple[int, int]], claim: str
                   ) -> tuple[int, int] | None:
    wanted = set(_WORD.findall(claim.lower()))
    best: tuple[float, tuple[int, int]] | None = None
    for start, end in sentences:
        words = set(_WORD.findall(text[start:end].lower()))
        if not wanted or not words:
            continue
        score = len(words & wanted) / len(wanted)
        if score >= 0.5 and (best is None or score > best[0]):
            best = (score, (start, end))
    return best[1] if best else None


def _split_sentences(text: str) -> list[str]:
    return [text[a:b] for a, b in split_sentences(text)]


def _sentence_spans(text: str) -> list[tuple[int, int]]:
    return list(split_sentences(text))


def _locate(text: str, core: str) -> tuple[int, int] | None:
    """Where `core` (whitespace-normalised) occurs in `text`, whatever its original spacing."""
    pattern = r"\s+".join(re.escape(w) for w in core.split())
    match = re.search(pattern, text)
    return (match.start(), match.end()) if match else None


# -- reader ---------------------------------------------------------------------------------------
READER_EMPTY = "Choisissez une source sous une réponse, ou un article dans l'onglet Corpus."


def reader_html(article: dict[str, Any] | None, text: str | None, start: int | None = None,
                end: int | None = None) -> str:
    """An article's whole text, escaped, with `[start, end)` in `<mark id="reader-mark">`.

    `article` is one of `Assistant.articles()` (title, date, source); offsets outside the text
    are ignored (nothing is marked)."""
    if article is None or text is None:
        return ('<div class="reader-missing" role="alert">Article introuvable dans l\'index : il a '
                "peut-être été retiré du corpus. Actualisez la page.</div>")
    head = (f'<h2 class="reader-title">{escape(str(article.get("title") or article["source"]))}'
            f'</h2><p class="reader-meta"><code>{escape(str(article["source"]))}</code>'
            f' · {escape(_french_date(article.get("date")))}</p>')
    if start is not None and end is not None and 0 <= start < end <= len(text):
        body = (f'{escape(text[:start])}<mark id="reader-mark">{escape(text[start:end])}</mark>'
                f"{escape(text[end:])}")
        head += f'<p class="reader-hint">Passage cité surligné (caractères {start}–{end}).</p>'
    else:
        body = escape(text)
    return f'<article class="reader-article">{head}<div class="reader-text">{body}</div></article>'


def _french_date(iso: object) -> str:
    """"2015-04-01" -> "daté du 1er avril 2015"; no date -> "date inconnue"."""
    match = re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", str(iso or ""))
    if not match or not 1 <= int(match[2]) <= 12:
        return "date inconnue"
    day = int(match[3])
    return f"daté du {'1er' if day == 1 else day} {_MONTHS[int(match[2]) - 1]} {match[1]}"


_MONTHS = ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
           "octobre", "novembre", "décembre")


# -- corpus tab -----------------------------------------------------------------------------------
def status_markdown(status: dict[str, Any]) -> str:
    """The index status as a short Markdown list (values escaped)."""
    rows = [
        ("Modèle d'embeddings", status.get("model")),
        ("Articles", status.get("articles")),
        ("Passages", status.get("chunks")),
        ("Taille de l'index", human_size(int(status.get("size_bytes") or 0))),
        ("Construit le", status.get("built_at")),
        ("Génération", status.get("generation")),
    ]
    return "\n".join(f"- **{label}** : {html.escape(str(value))}" for label, value in rows)


def human_size(size: int) -> str:
    """Bytes in French units: 1,2 Mo."""
    value = float(size)
    for unit in ("octets", "Ko", "Mo", "Go"):
        if value < 1024 or unit == "Go":
            text = f"{value:.0f}" if unit == "octets" else f"{value:.1f}".replace(".", ",")
            return f"{text} {unit}"
        value /= 1024
    return f"{size} octets"  # pragma: no cover


def article_rows(articles: Sequence[dict[str, Any]]) -> list[list[Any]]:
    """Rows of the corpus table: title, date, chunks, file."""
    return [
        [a.get("title") or "", a.get("date") or "", int(a.get("chunks") or 0), a.get("source")]
        for a in articles
    ]


ARTICLE_HEADERS = ["Titre", "Date", "Passages", "Fichier"]
