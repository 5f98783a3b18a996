"""Load articles from the corpus directory: decode, extract, clean web boilerplate, find metadata.

Supported: `.txt`, `.md` (optional YAML front matter: title, date, url, author) and `.html`
(main text extracted with trafilatura). The cleaned text is what chunk offsets point into, so
cleaning happens once, here, and everything downstream slices `Article.text`.

A file that cannot be read (binary, empty, undecodable, extraction found no text) raises
`ArticleError` with a French reason; `load_corpus` reports it and skips the file.
"""

from __future__ import annotations

import codecs
import hashlib
import logging
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from .errors import CorpusError
from .records import Article

log = logging.getLogger(__name__)

SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm")

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
_DATE_LINE = re.compile(
    r"^\s*(mis à jour|publié|modifié|mise à jour|date)\b[^0-9]{0,20}"
    r"(?P<date>\d{1,2}[/.-]\d{1,2}[/.-]\d{4}|\d{1,2}(er)? \w+ \d{4}|\d{4}-\d{2}-\d{2})",
    re.IGNORECASE,
)
_MONTHS = {
    "janvier": 1, "février": 2, "fevrier": 2, "mars": 3, "avril": 4, "mai": 5, "juin": 6,
    "juillet": 7, "août": 8, "aout": 8, "septembre": 9, "octobre": 10, "novembre": 11,
    "décembre": 12, "decembre": 12,
}
_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*\n", re.DOTALL)
_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))


class ArticleError(Exception):
    """An article that cannot be indexed; the message is the reason, in French."""


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


def scan_corpus(corpus_dir: Path) -> list[CorpusFile]:
    """Every candidate article file under `corpus_dir`, sorted; hidden files are ignored."""
    if not corpus_dir.is_dir():
        raise CorpusError(
            f"Le dossier du corpus {corpus_dir} n'existe pas : créez-le ou passez --corpus DIR."
        )
    files = []
    for root, dirs, names in os.walk(corpus_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if name.startswith(".") or not name.lower().endswith(SUFFIXES):
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
    text = normalize(decode(raw))
    suffix = Path(source).suffix.lower()
    meta: dict[str, str] = {}
    if suffix in (".html", ".htm"):
        text, meta = _extract_html(text)
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
        if not line or _DATE_LINE.match(line) or line.startswith(("http://", "https://")):
            continue
        if len(line) > 200:  # a paragraph, not a heading: fall back to its start
            return line[:120].rsplit(" ", 1)[0] + "…"
        return line
    return None


def find_date(text: str) -> str | None:
    """The publication/update date stated in the first lines ("Mis à jour le 01/10/2020")."""
    for line in text.split("\n")[:5]:
        m = _DATE_LINE.match(line)
        if m:
            return _iso_date(m.group("date"))
    return None


def _iso_date(value: object) -> str | None:
    if value is None:
        return None
    s = str(value).strip()
    if m := re.fullmatch(r"(\d{4})-(\d{2})-(\d{2}).*", s):
        return f"{m[1]}-{m[2]}-{m[3]}"
    if m := re.fullmatch(r"(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})", s):
        return f"{m[3]}-{int(m[2]):02d}-{int(m[1]):02d}"
    if m := re.fullmatch(r"(\d{1,2})(?:er)? (\w+) (\d{4})", s):
        month = _MONTHS.get(m[2].lower())
        if month:
            return f"{m[3]}-{month:02d}-{int(m[1]):02d}"
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


def _extract_html(html: str) -> tuple[str, dict[str, str]]:
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
