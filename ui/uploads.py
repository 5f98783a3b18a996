"""Add uploaded articles to the corpus: check each file, write the good ones, update the index.

Each file is refused with a French reason when its type is not an article type, its name is
unusable or already taken, it is larger than `settings.max_upload_bytes`, or the corpus loader
cannot parse it. Accepted files are written atomically (hidden temporary name, then `os.replace`)
into `settings.corpus_dir`, then `assistant.indexer.update` publishes a new generation that the
next request picks up.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from assistant import indexer
from assistant.config import Settings
from assistant.core import Assistant
from assistant.corpus import SUFFIXES, ArticleError, parse_article
from assistant.errors import AssistantError
from assistant.indexer import UpdateReport

MAX_NAME_CHARS = 120
_ODD = re.compile(r"[^\w.\-]+", re.UNICODE)

Progress = Callable[[float, str], None]


class UploadRefused(ValueError):
    """A file that is not added to the corpus; the message is the reason, in French."""


@dataclass
class UploadResult:
    accepted: list[str] = field(default_factory=list)  # names written into the corpus
    refused: list[tuple[str, str]] = field(default_factory=list)  # (name given, reason)
    report: UpdateReport | None = None
    error: str | None = None  # the index update failed (the files stay in the corpus)

    def summary(self) -> str:
        """A French Markdown summary for the corpus tab."""
        lines = []
        if self.accepted:
            lines.append("**Ajouté(s) :** " + ", ".join(f"`{n}`" for n in self.accepted))
        for name, reason in self.refused:
            lines.append(f"**Refusé :** `{_md(name)}` — {reason}")
        if self.report is not None:
            lines.append("**Index mis à jour :** " + self.report.summary())
        if self.error:
            lines.append(f"**Mise à jour de l'index impossible :** {self.error}")
        return "\n\n".join(lines) or "Aucun fichier reçu."


def safe_name(name: str) -> str:
    """A safe base name for an uploaded file, or UploadRefused.

    Directories are dropped (`../../x.txt` -> `x.txt`), runs of odd characters become `-`, leading
    dots are removed (hidden files are not articles), the length is capped; the suffix must be
    one the corpus loader reads.
    """
    base = unicodedata.normalize("NFC", name).replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C")
    stem, dot, suffix = base.rpartition(".")
    if not dot or f".{suffix.lower()}" not in SUFFIXES:
        allowed = ", ".join(sorted(set(SUFFIXES)))
        raise UploadRefused(f"type de fichier non accepté (formats acceptés : {allowed})")
    stem = _ODD.sub("-", stem).strip(".-_ ")
    if not stem:
        raise UploadRefused("nom de fichier inutilisable : renommez le fichier")
    stem = stem[: MAX_NAME_CHARS - len(suffix) - 1]
    return f"{stem}.{suffix.lower()}"


def target_path(corpus_dir: Path, name: str) -> Path:
    """Where `name` goes in the corpus, or UploadRefused when it would land anywhere else."""
    root = corpus_dir.resolve()
    path = (root / name).resolve()
    if path.parent != root:
        raise UploadRefused("nom de fichier refusé : il sort du dossier du corpus")
    if path.exists():
        raise UploadRefused(f"un article nommé « {name} » existe déjà : renommez le fichier")
    return path


def check_file(settings: Settings, name: str, path: Path) -> tuple[Path, bytes]:
    """(target path, content) for an acceptable upload, else UploadRefused with the reason."""
    target = target_path(settings.corpus_dir, safe_name(name))
    try:
        size = path.stat().st_size
    except OSError:
        raise UploadRefused("fichier illisible") from None
    if size > settings.max_upload_bytes:
        raise UploadRefused(
            f"fichier trop gros ({size:,} octets, maximum {settings.max_upload_bytes:,})"
            .replace(",", "\u202f")
        )
    raw = path.read_bytes()
    try:
        parse_article(raw, target.name)
    except ArticleError as exc:
        raise UploadRefused(f"article illisible : {exc}") from None
    return target, raw


def write_atomic(target: Path, raw: bytes) -> None:
    """Write `raw` beside `target` under a hidden name, then rename it into place."""
    tmp = target.with_name(f".{target.name}.part")
    tmp.write_bytes(raw)
    os.replace(tmp, target)


def add_uploads(
    assistant: Assistant, files: Sequence[tuple[str, Path]], *, progress: Progress | None = None,
) -> UploadResult:
    """Check `files` ((name given by the user, path of the uploaded copy)), add the good ones
    to the corpus and update the index with the assistant's already-loaded model."""
    settings = assistant.settings
    step = progress or (lambda fraction, text: None)
    result = UploadResult()
    taken: set[str] = set()
    for i, (name, path) in enumerate(files):
        step(0.5 * i / max(len(files), 1), f"Vérification de {name}")
        try:
            target, raw = check_file(settings, name, path)
            if target.name in taken:
                raise UploadRefused("fichier envoyé deux fois")
        except UploadRefused as exc:
            result.refused.append((name, str(exc)))
            continue
        write_atomic(target, raw)
        taken.add(target.name)
        result.accepted.append(target.name)
    if not result.accepted:
        return result
    step(0.5, "Mise à jour de l'index…")
    embedder = assistant.retriever.embedder
    try:
        result.report = indexer.update(settings, embedder=lambda: embedder, wait=30)
    except AssistantError as exc:
        result.error = str(exc)
        return result
    assistant.refresh()
    step(1.0, "Index à jour")
    return result


def _md(text: str) -> str:
    return text.replace("`", "'")
