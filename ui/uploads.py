"""Add uploaded articles to the corpus: check each file, write the good ones, update the index.

Each file is refused with a French reason when its type is not an article type, its name is
unusable or already taken, it is larger than `settings.max_upload_bytes`, or the corpus loader
cannot parse it. Accepted files are written atomically (hidden temporary name, then `os.replace`)
into `settings.corpus_dir`, then `Assistant.update_index` publishes a new generation and serves
it. The checks themselves live in `assistant.ingest.add`, shared with
`assistant add`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from assistant.config import Settings
from assistant.core import Assistant
from assistant.errors import AssistantError
from assistant.index.builder import UpdateReport
from assistant.ingest.add import ItemRefused as UploadRefused
from assistant.ingest.add import check_article, read_checked, safe_name, target_path, write_atomic

__all__ = ["UploadRefused", "UploadResult", "add_uploads", "check_file", "safe_name",
           "target_path", "write_atomic"]

Progress = Callable[[float, str], None]


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


def check_file(settings: Settings, name: str, path: Path) -> tuple[Path, bytes]:
    """(target path, content) for an acceptable upload, else UploadRefused with the reason."""
    target = target_path(settings.corpus_dir, safe_name(name))
    raw = read_checked(path, settings.max_upload_bytes)
    check_article(raw, target.name)
    return target, raw


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
    try:
        result.report = assistant.update_index(wait=30)
    except AssistantError as exc:
        result.error = str(exc)
        return result
    step(1.0, "Index à jour")
    return result


def _md(text: str) -> str:
    return text.replace("`", "'")
