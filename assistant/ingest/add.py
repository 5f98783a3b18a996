"""Add articles to the corpus: files copied in, web pages fetched and saved as Markdown.

`add_items` takes paths (`.txt`, `.md`, `.html`, `.pdf`) and http(s) URLs. Each item ends up
`added` (written into the corpus directory), `duplicate` (the same content is already there) or
`refused` with a French reason; then one incremental index update (`indexer.update`) covers the
whole batch. A web page's main text is extracted with trafilatura and saved as `<slug>.md` with a
YAML front matter (title, date, url, author when found).

Nothing is half-added: an item is written under a hidden temporary name in the corpus directory
and renamed into place (`os.replace`) only once complete and readable by the corpus loader; a
refused or interrupted item leaves no file. If the index update fails, the added files stay in
the corpus and the report says so: the next `assistant index update` indexes them.

The checks here are the ones every way into the corpus shares (the chat's upload path in
`ui/uploads.py` imports them): `safe_name`, `target_path`, `read_checked`, `check_article`,
`write_atomic`, with the size limit `Settings.max_upload_bytes`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import secrets
import time
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .. import __version__
from ..config import Settings
from ..records import Article
from .corpus import SUFFIXES, ArticleError, decode, extract_html, parse_article, scan_corpus

if TYPE_CHECKING:
    from ..embed.base import Embedder
    from ..index.builder import UpdateReport

log = logging.getLogger(__name__)

MAX_NAME_CHARS = 120
FETCH_TIMEOUT = 30.0  # seconds for a whole download (and for each network operation in it)
MAX_REDIRECTS = 5
HTML_TYPES = ("text/html", "application/xhtml+xml")
USER_AGENT = f"assistant/{__version__} (ajout d'articles au corpus)"

ADDED, DUPLICATE, REFUSED = "added", "duplicate", "refused"

_ODD = re.compile(r"[^\w.\-]+", re.UNICODE)
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)


class ItemRefused(ValueError):
    """An item that is not added to the corpus; the message is the reason, in French."""


class DuplicateItem(ItemRefused):
    """The item's content is already in the corpus (as `existing`)."""

    def __init__(self, existing: str) -> None:
        super().__init__(f"doublon : même contenu que « {existing} », déjà dans le corpus")
        self.existing = existing


# -- the checks shared by every way into the corpus -------------------------------------------
def safe_name(name: str) -> str:
    """A safe base name for a file added to the corpus, or ItemRefused.

    Directories are dropped (`../../x.txt` -> `x.txt`), runs of odd characters become `-`, leading
    dots are removed (hidden files are not articles), the length is capped; the suffix must be
    one the corpus loader reads.
    """
    base = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C")
    stem, dot, suffix = base.rpartition(".")
    if not dot or f".{suffix.lower()}" not in SUFFIXES:
        allowed = ", ".join(sorted(set(SUFFIXES)))
        raise ItemRefused(f"type de fichier non accepté (formats acceptés : {allowed})")
    stem = _ODD.sub("-", stem).strip(".-_ ")
    if not stem:
        raise ItemRefused("nom de fichier inutilisable : renommez le fichier")
    stem = stem[: MAX_NAME_CHARS - len(suffix) - 1]
    return f"{stem}.{suffix.lower()}"


def target_path(corpus_dir: Path, name: str, *, fix: str = "renommez le fichier") -> Path:
    """Where `name` goes in the corpus, or ItemRefused when it would land anywhere else or the
    name is taken (`fix` says what to do then)."""
    root = corpus_dir.resolve()
    path = (root / name).resolve()
    if path.parent != root:
        raise ItemRefused("nom de fichier refusé : il sort du dossier du corpus")
    if path.exists():
        raise ItemRefused(f"un article nommé « {name} » existe déjà : {fix}")
    return path


def too_big(size: int, limit: int) -> ItemRefused:
    return ItemRefused(f"fichier trop gros ({_bytes(size)} octets, maximum {_bytes(limit)})")


def read_checked(path: Path, limit: int) -> bytes:
    """The bytes of a file no larger than `limit`, or ItemRefused."""
    try:
        if path.is_dir():
            raise ItemRefused("c'est un dossier : donnez les fichiers (ex. dossier/*.md)")
        size = path.stat().st_size
        if size > limit:
            raise too_big(size, limit)
        return path.read_bytes()
    except FileNotFoundError:
        raise ItemRefused("fichier introuvable") from None
    except OSError:
        raise ItemRefused("fichier illisible") from None


def check_article(raw: bytes, name: str) -> Article:
    """The article the corpus loader will read from `raw` saved as `name`, or ItemRefused."""
    try:
        return parse_article(raw, name)
    except ArticleError as exc:
        raise ItemRefused(f"article illisible : {exc}") from None


def write_atomic(target: Path, raw: bytes) -> None:
    """Write `raw` beside `target` under a hidden name of its own (pid + random: two writers of
    the same target never share it), then rename it into place; on any failure (or
    interruption) the temporary file is removed and `target` is not created."""
    # 40 characters of the name at most: the whole stays under 255 bytes in any script.
    tmp = target.with_name(f".{target.name[:40]}.{os.getpid()}-{secrets.token_hex(6)}.part")
    fh = open(tmp, "xb")  # never someone else's file
    try:
        with fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def find_duplicate(corpus_dir: Path, raw: bytes) -> str | None:
    """The corpus file holding exactly `raw`, if any (only files of the same size are read)."""
    sha = hashlib.sha256(raw).hexdigest()
    for f in scan_corpus(corpus_dir):
        if f.size != len(raw):
            continue
        try:
            if hashlib.sha256(f.path.read_bytes()).hexdigest() == sha:
                return f.source
        except OSError:
            continue
    return None


# -- web pages --------------------------------------------------------------------------------
def is_url(item: str) -> bool:
    return bool(_URL.match(item))


def fetch(url: str, *, max_bytes: int, timeout: float = FETCH_TIMEOUT) -> tuple[str, str]:
    """(final URL, HTML text) of a web page, or ItemRefused: the size is capped while the body
    streams in, redirects are followed up to `MAX_REDIRECTS`, `timeout` bounds the whole download.
    """
    import httpx

    if urlsplit(url).scheme.lower() not in ("http", "https"):
        raise ItemRefused("adresse non prise en charge : seules les URL http(s) sont acceptées")
    deadline = time.monotonic() + timeout
    try:
        with httpx.Client(
            follow_redirects=True, max_redirects=MAX_REDIRECTS, timeout=timeout,
            headers={"User-Agent": USER_AGENT, "Accept": "text/html,application/xhtml+xml"},
        ) as client, client.stream("GET", url) as response:
            if response.status_code >= 400:
                raise ItemRefused(
                    f"erreur HTTP {response.status_code} ({response.reason_phrase or '?'})"
                )
            kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
            if kind and kind not in HTML_TYPES:
                raise ItemRefused(
                    f"type de contenu non pris en charge ({kind}) : seules les pages HTML "
                    "sont acceptées"
                )
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > max_bytes:
                raise ItemRefused(
                    f"page trop grosse ({_bytes(int(declared))} octets, maximum "
                    f"{_bytes(max_bytes)})"
                )
            body = bytearray()
            for piece in response.iter_bytes():
                body += piece
                if len(body) > max_bytes:
                    raise ItemRefused(f"page trop grosse (plus de {_bytes(max_bytes)} octets)")
                if time.monotonic() > deadline:
                    raise ItemRefused(f"délai dépassé ({timeout:g} s)")
            return str(response.url), _decoded(bytes(body), response.charset_encoding)
    except httpx.TooManyRedirects:
        raise ItemRefused(f"trop de redirections (plus de {MAX_REDIRECTS})") from None
    except httpx.TimeoutException:
        raise ItemRefused(f"URL injoignable : délai dépassé ({timeout:g} s)") from None
    except httpx.ConnectError as exc:
        raise ItemRefused(f"URL injoignable ({_first_line(exc) or 'connexion impossible'})") \
            from None
    except (httpx.InvalidURL, httpx.UnsupportedProtocol):
        raise ItemRefused("adresse invalide ou non prise en charge") from None
    except httpx.HTTPError as exc:  # the connection broke off mid-way, bad encoding...
        raise ItemRefused(
            f"téléchargement interrompu ({exc.__class__.__name__}) : rien n'a été ajouté"
        ) from None


def page_markdown(html: str, url: str) -> tuple[str, bytes]:
    """(file name, Markdown bytes with a YAML front matter) for a fetched page's main text."""
    import yaml

    try:
        text, meta = extract_html(html)
    except ArticleError as exc:
        raise ItemRefused(f"aucun texte principal trouvé dans la page ({exc})") from None
    front = {"title": meta.get("title") or None, "date": meta.get("date"), "url": url,
             "author": meta.get("author")}
    front = {k: v for k, v in front.items() if v}
    header = yaml.safe_dump(front, allow_unicode=True, sort_keys=False, width=1000)
    name = safe_name(f"{page_slug(meta.get('title'), url)}.md")
    raw = f"---\n{header}---\n\n{text.strip()}\n".encode()
    try:
        parse_article(raw, name)
    except ArticleError as exc:  # e.g. only a menu was found
        raise ItemRefused(f"aucun texte principal trouvé dans la page ({exc})") from None
    return name, raw


def page_slug(title: str | None, url: str) -> str:
    """A file stem for a page: its title folded to ASCII, else its URL's last path segment."""
    from ..text.analysis import fold_accents, words

    parts = urlsplit(url)
    segment = parts.path.rstrip("/").rsplit("/", 1)[-1].rsplit(".", 1)[0]
    for candidate in (title, segment, parts.hostname):
        folded = "-".join(fold_accents(w) for w in words(candidate or ""))
        slug = re.sub(r"[^a-z0-9]+", "-", folded).strip("-")
        if slug:
            return slug[:80].rsplit("-", 1)[0] if len(slug) > 80 else slug
    return "page"


# -- the batch --------------------------------------------------------------------------------
@dataclass(frozen=True)
class ItemResult:
    item: str  # the path or URL as given
    status: str  # ADDED, DUPLICATE or REFUSED
    source: str | None = None  # the corpus file written (added) or already there (duplicate)
    reason: str | None = None  # French, for duplicate and refused

    def line(self) -> str:
        if self.status == ADDED:
            return f"ajouté : {self.item} -> {self.source}"
        return f"refusé : {self.item} — {self.reason}"


@dataclass
class AddReport:
    items: list[ItemResult] = field(default_factory=list)
    index: UpdateReport | None = None  # None: no update ran, or it failed (see index_error)
    index_error: str | None = None  # the update failed: added files stay, not yet indexed

    @property
    def added(self) -> list[str]:
        return [r.source for r in self.items if r.status == ADDED and r.source]

    @property
    def exit_status(self) -> int:
        """0 when something was added and indexed, or every item was already in the corpus;
        1 when nothing was added for another reason, or the index update failed."""
        if self.index_error:
            return 1
        if self.added:
            return 0
        return 0 if self.items and all(r.status == DUPLICATE for r in self.items) else 1

    def lines(self) -> list[str]:
        """The report in French, one line per item, then the index."""
        out = [r.line() for r in self.items]
        if self.index is not None:
            out.append("Index mis à jour : " + self.index.summary())
        if self.index_error:
            out.append(
                f"Index NON mis à jour : {self.index_error}. Les articles ajoutés restent dans "
                "le corpus ; « assistant index update » les indexera."
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "items": [asdict(r) for r in self.items],
            "added": self.added,
            "index": None if self.index is None else self.index.to_dict(),
            "index_error": self.index_error,
            "exit_status": self.exit_status,
        }


def add_items(
    settings: Settings, items: Sequence[str], *, update_index: bool = True,
    embedder: Callable[[], Embedder] | None = None, timeout: float = FETCH_TIMEOUT,
    wait: float = 30.0, progress: bool | None = None,
) -> AddReport:
    """Add each path or URL of `items` to `settings.corpus_dir`, then update the index once."""
    scan_corpus(settings.corpus_dir)  # CorpusError now if the corpus directory is missing
    report = AddReport()
    for item in items:
        try:
            source = _add_one(settings, item, timeout)
            report.items.append(ItemResult(item, ADDED, source=source))
        except DuplicateItem as exc:
            report.items.append(ItemResult(item, DUPLICATE, source=exc.existing, reason=str(exc)))
        except ItemRefused as exc:
            report.items.append(ItemResult(item, REFUSED, reason=str(exc)))
        log.debug("%s", report.items[-1].line())
    if update_index and any(r.status != REFUSED for r in report.items):
        from ..index import builder as indexer

        try:
            report.index = indexer.update(settings, embedder, progress=progress, wait=wait)
        except Exception as exc:  # the files stay; the next `index update` picks them up
            log.debug("index update failed", exc_info=True)
            report.index_error = str(exc) or exc.__class__.__name__
    return report


def _add_one(settings: Settings, item: str, timeout: float) -> str:
    """Write one item into the corpus; its corpus name, or ItemRefused."""
    limit = settings.max_upload_bytes
    if is_url(item):
        url, html = fetch(item, max_bytes=limit, timeout=timeout)
        name, raw = page_markdown(html, url)
        fix = "supprimez l'ancien pour le remplacer"
    else:
        name = safe_name(Path(item).name)
        raw = read_checked(Path(item).expanduser(), limit)
        fix = "renommez le fichier ou supprimez l'ancien"
        check_article(raw, name)
    if existing := find_duplicate(settings.corpus_dir, raw):
        raise DuplicateItem(existing)
    target = target_path(settings.corpus_dir, name, fix=fix)
    write_atomic(target, raw)
    return target.name


def _decoded(raw: bytes, charset: str | None) -> str:
    if charset:
        try:
            return raw.decode(charset, errors="replace")
        except LookupError:  # an unknown charset name
            pass
    try:
        return decode(raw)
    except ArticleError as exc:
        raise ItemRefused(f"page illisible : {exc}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def _bytes(n: int) -> str:
    return f"{n:,}".replace(",", "\u202f")
