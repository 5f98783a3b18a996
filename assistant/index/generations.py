"""The index directory: generations described by manifests, an atomic `CURRENT` pointer, a
writer lock.

    index/
      CURRENT                 name of the generation being served (replaced with os.replace)
      SEQUENCE                the last generation number handed out (never reused)
      .lock                   flock'ed by the one writer, holds its pid (freed when it dies)
      generations/<n>-<time>/ manifest.json: what generation n is made of
      catalog/catalog-<n>.sqlite   articles, chunks, sentences (shared by generations)
      stores/<role>/          the dense and lexical stores' segment files (shared)

A generation's manifest names the catalog file and the stores' states; an update writes only
new rows and new segment files, then a new manifest, and switches `CURRENT`. A crash at any
point leaves the previous generation serving: nothing it refers to was changed.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Collection, Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import REBUILD_HINT, IndexCorruptError, IndexLockedError, IndexMissingError
from .files import fsync_path, fsync_tree

log = logging.getLogger(__name__)

FORMAT_VERSION = 2
MANIFEST = "manifest.json"


def current_generation(index_dir: Path) -> Path:
    """The directory of the generation being served, or IndexMissingError."""
    pointer = index_dir / "CURRENT"
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise IndexMissingError(
            f"Aucun index dans {index_dir}. Lancez `assistant index build` pour le créer."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise IndexCorruptError(f"{pointer} est illisible ({exc}). {REBUILD_HINT}") from None
    path = index_dir / "generations" / name
    if not name or "/" in name or not path.is_dir():
        raise IndexCorruptError(
            f"{pointer} désigne une génération absente ({name!r}). {REBUILD_HINT}"
        )
    return path


def current_marker(index_dir: Path) -> str | None:
    """A cheap token that changes when a new generation is published (for hot reload)."""
    try:
        return (index_dir / "CURRENT").read_text(encoding="utf-8").strip()
    except OSError:
        return None


def next_number(index_dir: Path) -> int:
    """A new generation number, above every one handed out before (call with the lock held):
    a writer killed after writing segment files never lets another reuse their names."""
    path = index_dir / "SEQUENCE"
    try:
        last = int(path.read_text(encoding="utf-8").strip() or 0)
    except FileNotFoundError:
        last = 0
    except (OSError, ValueError) as exc:
        raise IndexCorruptError(f"{path} est illisible ({exc}). {REBUILD_HINT}") from None
    gens = index_dir / "generations"
    if gens.is_dir():  # never below a published one, even if SEQUENCE was lost
        last = max([last, *(_number(p.name) for p in gens.iterdir())])
    tmp = index_dir / f".SEQUENCE.{uuid.uuid4().hex[:8]}"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(f"{last + 1}\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return last + 1


def _number(name: str) -> int:
    head = name.split("-", 1)[0]
    return int(head) if head.isdigit() else 0


def new_workdir(index_dir: Path) -> Path:
    gens = index_dir / "generations"
    gens.mkdir(parents=True, exist_ok=True)
    work = gens / f".tmp-{uuid.uuid4().hex[:12]}"
    work.mkdir()
    return work


def publish(index_dir: Path, workdir: Path, number: int) -> Path:
    """Move a finished work directory into place as generation `number` and point CURRENT at
    it, atomically; then remove the generations older than the one it replaces."""
    fsync_tree(workdir)
    previous = current_marker(index_dir)
    name = f"{number:06d}-" + time.strftime("%Y%m%dT%H%M%S")
    final = workdir.parent / name
    os.replace(workdir, final)
    tmp_pointer = index_dir / f".CURRENT.{uuid.uuid4().hex[:8]}"
    with open(tmp_pointer, "w", encoding="utf-8") as fh:
        fh.write(name + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp_pointer, index_dir / "CURRENT")
    fsync_path(index_dir)
    _prune(index_dir, keep={name, previous})
    return final


def discard(workdir: Path) -> None:
    shutil.rmtree(workdir, ignore_errors=True)


def _prune(index_dir: Path, keep: set[str | None]) -> None:
    """Remove all generations but the new one and the one it replaces (readers may hold it).

    Named by what CURRENT said, not by sorting names: two generations published in the same
    second do not sort by age, and one renamed into place by a writer killed before switching
    CURRENT is newer than the one being served yet was never served.
    """
    for p in (index_dir / "generations").iterdir():
        if not p.name.startswith(".") and p.name not in keep:
            shutil.rmtree(p, ignore_errors=True)


def clean_abandoned(index_dir: Path) -> None:
    """Remove work directories left by killed builds (call with the lock held)."""
    gens = index_dir / "generations"
    if gens.is_dir():
        for p in gens.iterdir():
            if p.name.startswith(".tmp-"):
                log.info("Suppression d'une construction interrompue : %s", p.name)
                shutil.rmtree(p, ignore_errors=True)
    for pattern in (".CURRENT.*", ".SEQUENCE.*"):
        for p in index_dir.glob(pattern):
            p.unlink(missing_ok=True)


def kept_manifests(index_dir: Path) -> list[dict[str, Any]]:
    """Manifests of the generations on disk (after a publish: the new one and the one readers
    may still hold); what they refer to must be kept, the rest may go. Unreadable ones are
    skipped: a generation that cannot be read cannot be served."""
    found = []
    for p in sorted((index_dir / "generations").iterdir()):
        if not p.name.startswith("."):
            try:
                found.append(read_manifest(p))
            except IndexCorruptError:
                continue
    return found


@contextlib.contextmanager
def writer_lock(index_dir: Path, wait: float = 0.0) -> Iterator[None]:
    """Exclusive lock for writers. A lock left by a dead process is free (flock dies with it)."""
    index_dir.mkdir(parents=True, exist_ok=True)
    path = index_dir / ".lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + wait
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
                    raise IndexLockedError(
                        f"Une autre construction de l'index est en cours (pid {holder}). "
                        "Attendez qu'elle se termine, puis relancez la commande."
                    ) from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # closing releases the flock


def write_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    data = {"format_version": FORMAT_VERSION, **manifest}
    (directory / MANIFEST).write_text(json.dumps(data, indent=2, ensure_ascii=False), "utf-8")


def read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise IndexCorruptError(f"{path} est manquant. {REBUILD_HINT}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IndexCorruptError(f"{path} est illisible ({exc}). {REBUILD_HINT}") from None
    if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION:
        raise IndexCorruptError(
            f"{path} n'a pas le format attendu (version {FORMAT_VERSION}). {REBUILD_HINT}"
        )
    if not isinstance(data.get("generation"), int):
        raise IndexCorruptError(f"{path} : numéro de génération manquant. {REBUILD_HINT}")
    for key in ("embedding", "chunking", "analyzer", "corpus", "catalog", "stores"):
        if not isinstance(data.get(key), dict):
            raise IndexCorruptError(f"{path} : section « {key} » manquante. {REBUILD_HINT}")
    return data


class GenerationNames:
    """How a server backend names what one generation of a store writes (a Qdrant collection,
    a PostgreSQL table): `{prefix}{kind}_{generation}`, the alias `{prefix}{kind}`."""

    prefix: str
    kind: str

    @property
    def alias(self) -> str:
        return f"{self.prefix}{self.kind}"

    def physical(self, generation: int) -> str:
        return f"{self.alias}_{generation}"

    def owns(self, name: str) -> bool:
        return re.fullmatch(re.escape(self.alias) + r"_\d+", name) is not None


class PendingRows:
    """A server store's changes since it was opened, written by its `save`: the rows added
    (`_pending_add`, id -> row) and the ids removed (`_pending_remove`); `any_saved` says
    whether an id is already stored at the opened generation."""

    _count: int  # rows stored at the opened generation
    _pending_add: dict[int, Any]
    _pending_remove: Collection[int]

    def any_saved(self, ids: list[int]) -> bool:
        raise NotImplementedError

    def __len__(self) -> int:
        return self._count + len(self._pending_add) - len(self._pending_remove)

    def register_add(self, ids: list[int], rows: Sequence[Any]) -> None:
        """Rows `ids` (new ids only, ValueError otherwise), written by `save`."""
        if len(set(ids)) != len(ids) or any(i in self._pending_add for i in ids):
            raise ValueError("an id is given twice or is already stored")
        if self.any_saved([i for i in ids if i not in self._pending_remove]):
            raise ValueError("an id is given twice or is already stored")
        self._pending_add.update(zip(ids, rows))
