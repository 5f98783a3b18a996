"""Load articles from the corpus directory: decode, extract, clean web boilerplate, find metadata.

Supported: `.txt`, `.md` (optional YAML front matter: title, date, url, author), `.html`
(main text extracted with trafilatura) and `.pdf` (text layer read with pypdf, pages joined by a
blank line, each page's start offset kept in `Article.page_starts`). The cleaned text is what
chunk offsets point into, so cleaning happens once, here, and everything downstream slices
`Article.text`.

A file that cannot be read (binary, empty, undecodable, extraction found no text) raises
`ArticleError` with a French reason; `load_corpus` reports it and skips the file.
"""

from __future__ import annotations

import codecs
import datetime
import hashlib
import logging
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from ..errors import ArticleError, CorpusError
from ..records import Article

log = logging.getLogger(__name__)

SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf")

# Lines that end the article: what follows is the site's furniture (comment form, top lists).
_TAIL_MARKERS = re.compile(
    r"^\s*(sujets les \+ (lus|commentés)|commentaires?\s*\(?\d+\)?|laisser un commentaire"
    r"|votre (adresse )?e-?mail ne sera pas|réagir à cet article|vous aimerez aussi"
    r"|dans la même rubrique|partager cet article)\b",
    re.IGNORECASE,
)
# Single lines that are not article text (cross-links, share buttons, ads).
_BOILERPLATE_LINE = re.compile(
    r"^\s*([àa] lire (aussi|également)|lire aussi|voir aussi|sur le même sujet|publicité"
    r"|partager( sur)?\s*:?|suivez-nous|abonnez-vous|newsletter)\b.*$",
    re.IGNORECASE,
)
_MONTHS = {  # month names and their usual abbreviations, by their first letters
    "jan": 1, "fév": 2, "fev": 2, "mar": 3, "avr": 4, "mai": 5, "juin": 6, "juil": 7,
    "aoû": 8, "aou": 8, "sep": 9, "oct": 10, "nov": 11, "déc": 12, "dec": 12,
}
_MONTH = (r"(?i:janvier|janv|février|fevrier|févr|fevr|fév|fev|mars|avril|avr|mai|juin|juillet"
          r"|juil|août|aout|septembre|sept|octobre|oct|novembre|nov|décembre|decembre|déc|dec)")
_DATE = (r"(?:(?i:lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche)\s+)?"
         r"(?P<date>\d{4}-\d{2}-\d{2}|\d{1,2}[/.-]\d{1,2}[/.-]\d{4}"
         rf"|(?:1er|\d{{1,2}})\s+{_MONTH}\.?\s+\d{{4}})")
_TIME = r"(?:\s*(?:,|à|-|–)?\s*\d{1,2}\s*[h:]\s*\d{0,2})?"
_NAME = r"[A-ZÀ-Ý][\w'’.-]*(?:\s+(?:de\s+|d[’']|du\s+)?[A-ZÀ-Ý][\w'’.-]*){0,3}"
# A line that only states the article's date: "Publié le 9 avril 2015 à 10h32", "Mis à jour le
# 01/10/2020", "Par Jeanne Martin, le 9 avr. 2015", "Jeanne Martin | 09/04/2015", "Le 9 avril
# 2015", "Date : 2015-04-09"; an update clause may follow ("... - Mis à jour le ...").
_DATE_LINE = re.compile(
    r"\s*(?:"
    r"(?P<label>(?i:publiée?|postée?|mise? à jour|modifiée?|actualisée?|date))\b[^\d\n]{0,12}?"
    rf"|(?i:par)\s+{_NAME}\s*(?:[,|–—-]\s*)?(?:(?i:publiée?)\s+)?(?:(?i:le)\s+)?"
    rf"|[A-ZÀ-Ý][\w'’.-]*\s+{_NAME}\s*[,|–—-]\s*(?:(?i:le)\s+)?"
    r"|(?i:le)\s+"
    rf")?{_DATE}{_TIME}\s*(?:[|,–—-]\s*(?P<rest>\S.*?)|\.)?\s*"
)
_UPDATED = re.compile(r"(?i:mise?|modifi|actualis)")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*\n", re.DOTALL)
_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))


@dataclass(frozen=True)
class CorpusFile:
    source: str  # relative path, forward slashes
    path: Path
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class Skipped:
    source: str
    reason: str


def is_hidden(name: str) -> bool:
    """A file or folder the corpus ignores (`.name`: also the partial files being written)."""
    return name.startswith(".")


def is_candidate(name: str) -> bool:
    """Whether a file named `name` (not hidden, an article suffix) is read as an article."""
    return not is_hidden(name) and name.lower().endswith(SUFFIXES)


def check_corpus_dir(corpus_dir: Path) -> None:
    """CorpusError with the fix unless `corpus_dir` is a directory."""
    if not corpus_dir.is_dir():
        raise CorpusError(
            f"Le dossier du corpus {corpus_dir} n'existe pas : créez-le ou passez --corpus DIR."
        )


def scan_corpus(corpus_dir: Path) -> list[CorpusFile]:
    """Every candidate article file under `corpus_dir`, sorted; hidden files are ignored."""
    check_corpus_dir(corpus_dir)
    files = []
    for root, dirs, names in os.walk(corpus_dir):
        dirs[:] = sorted(d for d in dirs if not is_hidden(d))
        for name in sorted(names):
            if not is_candidate(name):
                continue
            path = Path(root) / name
            try:
                st = path.stat()
            except OSError:
                continue
            source = path.relative_to(corpus_dir).as_posix()
            files.append(CorpusFile(source, path, st.st_size, st.st_mtime_ns))
    return files


def load_corpus(corpus_dir: Path) -> tuple[list[Article], list[Skipped]]:
    """Load every article; unreadable ones are logged and returned as `Skipped`."""
    articles, skipped = [], []
    for f in scan_corpus(corpus_dir):
        try:
            articles.append(read_article(f.path, f.source))
        except ArticleError as exc:
            log.warning("Article ignoré : %s (%s)", f.source, exc)
            skipped.append(Skipped(f.source, str(exc)))
    return articles, skipped


def read_article(path: Path, source: str) -> Article:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ArticleError(f"fichier illisible ({exc.strerror or exc})") from None
    return parse_article(raw, source)


def parse_article(raw: bytes, source: str) -> Article:
    """Turn raw file bytes into a cleaned `Article` (the suffix of `source` picks the format)."""
    sha = hashlib.sha256(raw).hexdigest()
    if source.lower().endswith(".pdf"):
        return _parse_pdf(raw, source, sha)
    text = normalize(decode(raw))
    suffix = Path(source).suffix.lower()
    meta: dict[str, str] = {}
    if suffix in (".html", ".htm"):
        text, meta = extract_html(text)
    elif suffix in (".md", ".markdown"):
        text, meta = _split_front_matter(text)
    text = clean(text)
    if len(re.findall(r"\w", text)) < 20:
        raise ArticleError("aucun texte d'article (fichier vide ou presque)")
    title = meta.get("title") or find_title(text) or Path(source).stem
    date = _iso_date(meta.get("date")) or find_date(text)
    return Article(
        source=source, title=title.strip()[:300], text=text, sha256=sha, date=date,
        url=meta.get("url"), author=meta.get("author"),
    )


def decode(raw: bytes) -> str:
    """UTF-8 (with or without BOM), UTF-16 with BOM, else cp1252/latin-1; binary is refused."""
    if not raw.strip():
        raise ArticleError("fichier vide")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = raw.decode("utf-16")
        except UnicodeDecodeError:
            raise ArticleError("encodage UTF-16 invalide") from None
    elif b"\x00" in raw[:8192]:
        raise ArticleError("fichier binaire, pas du texte")
    else:
        # UTF-8 (BOM optional); a byte that is not valid UTF-8 is read as cp1252 (latin-1 where
        # cp1252 has no character): a cp1252/latin-1 file decodes right, and so does a UTF-8 file
        # with a few pasted cp1252 bytes (decoding all of it as cp1252 would garble every accent).
        codecs.register_error(_CP1252_BYTES, _cp1252_bytes)
        body = raw[len(codecs.BOM_UTF8):] if raw.startswith(codecs.BOM_UTF8) else raw
        text = body.decode("utf-8", errors=_CP1252_BYTES)
    controls = sum(1 for c in text if unicodedata.category(c) == "Cc" and c not in "\n\r\t\f")
    if controls > max(8, len(text) // 100):
        raise ArticleError("fichier binaire ou corrompu (caractères de contrôle)")
    return text


_CP1252_BYTES = "assistant-cp1252-bytes"


def _cp1252_bytes(exc: UnicodeError) -> tuple[str, int]:
    """Codec error handler: each undecodable byte as cp1252, else latin-1."""
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    bad = exc.object[exc.start:exc.end]
    return "".join(bytes([b]).decode("cp1252", "ignore") or chr(b) for b in bad), exc.end


def normalize(text: str) -> str:
    """NFC, Unix newlines, no zero-width characters or control characters."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n").replace("\t", " ")
    text = "".join(c for c in text if c == "\n" or unicodedata.category(c) != "Cc")
    # NFC last: "e" + U+200B + U+0301 only composes into "é" once the U+200B is gone.
    return unicodedata.normalize("NFC", text.translate(_ZERO_WIDTH))


def clean(text: str) -> str:
    """Drop web furniture: everything from a tail marker on, cross-link lines, extra blank lines."""
    kept: list[str] = []
    for line in text.split("\n"):
        if _TAIL_MARKERS.match(line) and sum(len(k) for k in kept) > 200:
            break
        if _BOILERPLATE_LINE.match(line):
            continue
        kept.append(line.rstrip())
    cleaned = "\n".join(kept)
    cleaned = re.sub(r"\n{3,}", "\n\n", cleaned)
    return cleaned.strip()


def find_title(text: str) -> str | None:
    """The first real heading line: not a date line, not a bare URL, markdown '#' removed."""
    for line in text.split("\n")[:10]:
        line = line.strip().lstrip("#").strip()
        if not line or _line_dates(line) or line.startswith(("http://", "https://")):
            continue
        if len(line) > 200:  # a paragraph, not a heading: fall back to its start
            return line[:120].rsplit(" ", 1)[0] + "…"
        return line
    return None


def find_date(text: str) -> str | None:
    """The article's own date, from a line that states only it, among the first lines (or the
    byline at the end): "Publié le 9 avril 2015", "Mis à jour le 01/10/2020", "Par Jeanne
    Martin, le 9 avr. 2015"... A publication date wins over an update date; a date inside a
    sentence of the text is never taken."""
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    found: list[tuple[bool, str]] = []  # (is an update date, ISO date)
    for line in lines[:8] + lines[-4:]:
        found += _line_dates(line)
    published = [iso for updated, iso in found if not updated]
    return next(iter(published or [iso for _, iso in found]), None)


def _line_dates(line: str) -> list[tuple[bool, str]]:
    """The dates a date line states ([] for any other line), each with "is an update"."""
    dates: list[tuple[bool, str]] = []
    while line and len(line) <= 160 and (m := _DATE_LINE.fullmatch(line)):
        iso = _iso_date(m["date"])
        if iso is None:
            return []
        dates.append((bool(m["label"] and _UPDATED.match(m["label"])), iso))
        line = m["rest"] or ""
    return dates if not line else []


def _iso_date(value: object) -> str | None:
    if value is None:
        return None
    s = " ".join(str(value).split())
    if m := re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})(?:[T ].*)?", s):
        year, month, day = int(m[1]), int(m[2]), int(m[3])
    elif m := re.fullmatch(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})", s):
        year, month, day = int(m[3]), int(m[2]), int(m[1])
    elif m := re.fullmatch(rf"(?:\w+\s+)?(1er|\d{{1,2}})\s+({_MONTH})\.?\s+(\d{{4}})", s):
        name = m[2].lower()
        month = _MONTHS.get(name[:4]) or _MONTHS.get(name[:3]) or 0
        year, day = int(m[3]), 1 if m[1] == "1er" else int(m[1])
    else:
        return None
    try:
        return datetime.date(year, month, day).isoformat()
    except ValueError:
        return None


def _split_front_matter(text: str) -> tuple[str, dict[str, str]]:
    m = _FRONT_MATTER.match(text)
    if not m:
        return text, {}
    import yaml

    try:
        data = yaml.safe_load(m.group(1))
    except Exception as exc:  # YAMLError, but also ValueError (date: 2020-13-45), RecursionError
        raise ArticleError(f"en-tête YAML invalide ({exc.__class__.__name__})") from None
    meta = {}
    if isinstance(data, dict):
        for key in ("title", "date", "url", "author"):
            if data.get(key) not in (None, ""):
                meta[key] = str(data[key])
    return text[m.end():], meta


def extract_html(html: str) -> tuple[str, dict[str, str]]:
    import trafilatura

    try:
        text = trafilatura.extract(html, include_comments=False, include_tables=True)
        doc = trafilatura.extract_metadata(html)
    except Exception as exc:  # trafilatura raises many kinds on broken markup
        raise ArticleError(f"HTML illisible ({exc.__class__.__name__})") from None
    if not text:
        raise ArticleError("aucun texte d'article trouvé dans le HTML")
    meta = {}
    if doc is not None:
        for key in ("title", "date", "url", "author"):
            if getattr(doc, key, None):
                meta[key] = str(getattr(doc, key))
    return normalize(text), meta


# -- PDF --------------------------------------------------------------------------------------
PAGE_SEPARATOR = "\n\n"  # between two pages in `Article.text`
_PAGE_MARK = "\ue000"  # a private-use character that marks page breaks while `clean` runs


def _parse_pdf(raw: bytes, source: str, sha: str) -> Article:
    """An article from a PDF's text layer; `page_starts[n - 1]` is where page n begins."""
    pages, meta = _pdf_pages(raw)
    if not any(p.strip() for p in pages):
        raise ArticleError("PDF sans texte extractible (document scanné ?)")
    # Cleaned as one text (a tail marker ends the article, whatever the page), page breaks
    # marked so that each page's start can be found again in the cleaned text.
    marked = f"\n\n{_PAGE_MARK}\n\n".join(normalize(p).replace(_PAGE_MARK, "") for p in pages)
    parts = re.split(rf"\s*{_PAGE_MARK}\s*", clean(marked))
    text = PAGE_SEPARATOR.join(p for p in parts if p)
    starts, position = [], 0
    for part in parts:  # an empty page starts where the next page with text does
        starts.append(position)
        if part:
            position += len(part) + len(PAGE_SEPARATOR)
    if len(re.findall(r"\w", text)) < 20:
        raise ArticleError("aucun texte d'article (PDF vide ou presque)")
    title = meta.get("title") or find_title(text) or Path(source).stem
    return Article(
        source=source, title=title.strip()[:300], text=text, sha256=sha, date=find_date(text),
        author=meta.get("author"), page_starts=tuple(starts),
    )


def _pdf_pages(raw: bytes) -> tuple[list[str], dict[str, str]]:
    """The text of each page and the document's title/author, or ArticleError."""
    import io

    from pypdf import PdfReader

    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted and not reader.decrypt(""):
            raise ArticleError("PDF protégé par un mot de passe")
        pages = [page.extract_text() or "" for page in reader.pages]
        info = reader.metadata
        found = {key: getattr(info, key, None) for key in ("title", "author")} if info else {}
    except ArticleError:
        raise
    except Exception as exc:  # pypdf raises many kinds on damaged files
        raise ArticleError(f"PDF illisible ({exc.__class__.__name__})") from None
    meta = {k: normalize(v).strip() for k, v in found.items() if isinstance(v, str) and v.strip()}
    return pages, meta
