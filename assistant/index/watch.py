"""A corpus that indexes itself: watch the corpus directory, update the index when files change.

    watcher = CorpusWatcher(assistant)     # what `assistant serve --watch` starts
    watcher.start()
    ...                                    # files copied, changed, removed: indexed, served
    watcher.events()                       # what each update indexed or refused (`WatchEvent`)
    watcher.stop()

Two threads: one reads the file-system events (watchfiles) and never blocks, so no change is
missed while an update runs; the other waits for a quiet moment (`quiet_ms` without a new
change, `max_ms` at most: a burst of copies is one update) and runs `Assistant.update_index`,
the incremental update of `assistant index update` (its writer lock, its crash safety) with the
model already loaded, after which the new generation is served. Changes that arrive during an
update make one more update after it. Hidden files (partial copies) and the index directory
are ignored; an unreadable article is refused with its reason, the others are indexed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import AssistantError, IndexLockedError, missing_extra
from ..ingest.corpus import Skipped, check_corpus_dir, is_candidate, is_hidden

if TYPE_CHECKING:
    from ..core import Assistant
    from .builder import UpdateReport

log = logging.getLogger(__name__)

QUIET_MS = 1_000  # an update starts once the corpus has been still this long...
MAX_MS = 5_000  # ...or this long after the first change of a burst
LOCK_WAIT_S = 120.0  # how long an update waits for another writer (`index update`, an upload)
KEPT_EVENTS = 20


@dataclass(frozen=True)
class WatchEvent:
    """One update run by the watcher: what it indexed, removed or refused (unreadable files
    among those that changed, with their French reason), or why it failed."""

    at: str  # local time, HH:MM:SS
    added: tuple[str, ...] = ()
    changed: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    refused: tuple[Skipped, ...] = ()
    error: str | None = None
    generation: str | None = None

    @classmethod
    def of(cls, report: UpdateReport, changed_files: Iterable[str] | None) -> WatchEvent:
        """The event of `report`; only the refusals of `changed_files` are told (None: all),
        not those of unreadable files that were already there."""
        seen = None if changed_files is None else set(changed_files)
        return cls(_now(), tuple(report.added), tuple(report.changed), tuple(report.removed),
                   tuple(s for s in report.skipped if seen is None or s.source in seen),
                   generation=report.generation)

    @property
    def notable(self) -> bool:
        """Something to tell: an article indexed or removed, a file refused, a failure."""
        return bool(self.added or self.changed or self.removed or self.refused or self.error)

    def summary(self, *, name: Callable[[str], str] = str,
                text: Callable[[str], str] = str) -> str:
        """One French line; `name` and `text` format the file names and the reasons (e.g.
        escape them for the page; plain for the log)."""
        parts = []
        for label, names in (("indexé(s)", self.added), ("réindexé(s)", self.changed),
                             ("retiré(s) de l'index", self.removed)):
            if names:
                parts.append(f"{label} : " + ", ".join(map(name, names)))
        parts += [f"refusé : {name(s.source)} ({text(s.reason)})" for s in self.refused]
        if self.error:
            parts.append(f"mise à jour de l'index impossible : {text(self.error)}")
        return " ; ".join(parts) or "rien de nouveau"

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at, "added": list(self.added), "changed": list(self.changed),
                "removed": list(self.removed), "error": self.error,
                "refused": [{"source": s.source, "reason": s.reason} for s in self.refused],
                "generation": self.generation}


@dataclass
class _Pending:
    """Changed paths not yet indexed, and when the first and the last of them arrived."""

    paths: set[str] = field(default_factory=set)
    first: float = 0.0
    last: float = 0.0


class CorpusWatcher:
    """Watch `assistant.settings.corpus_dir` and keep the index (and `assistant`) up to date."""

    def __init__(self, assistant: Assistant, *, quiet_ms: int = QUIET_MS, max_ms: int = MAX_MS,
                 lock_wait: float = LOCK_WAIT_S) -> None:
        try:
            import watchfiles  # noqa: F401
        except ImportError:
            raise missing_extra("ui", "watchfiles") from None
        self.assistant = assistant
        self.corpus_dir = Path(assistant.settings.corpus_dir).resolve()
        self.index_dir = Path(assistant.settings.index_dir).resolve()
        self.quiet_s, self.max_s, self.lock_wait = quiet_ms / 1000, max_ms / 1000, lock_wait
        self._events: deque[WatchEvent] = deque(maxlen=KEPT_EVENTS)
        self._count = 0  # updates that had something to tell, since the start
        self._pending = _Pending()
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- control ------------------------------------------------------------------------------
    def start(self, *, timeout: float = 10.0) -> None:
        """Start watching (CorpusError if the corpus directory is missing); returns once the
        file-system watch is in place."""
        check_corpus_dir(self.corpus_dir)
        self._threads = [threading.Thread(target=self._listen, name="corpus-watch", daemon=True)]
        self._threads[0].start()
        self._ready.wait(timeout)
        self._update(None, wait=0)  # what changed while no one watched (no-op after an update)
        self._threads.append(threading.Thread(target=self._work, name="corpus-update",
                                              daemon=True))
        self._threads[1].start()
        log.info("Surveillance du corpus %s : les articles ajoutés, modifiés ou supprimés sont "
                 "indexés automatiquement.", self.corpus_dir)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        with self._wake:
            self._wake.notify_all()
        for thread in self._threads:
            thread.join(timeout)

    def events(self) -> list[WatchEvent]:
        """The latest updates that had something to tell, newest first."""
        with self._wake:
            return list(reversed(self._events))

    @property
    def count(self) -> int:
        """How many such updates since the start (a page polls it to know when to refresh)."""
        return self._count

    def notify(self, paths: Sequence[str]) -> None:
        """Record changed paths (absolute) as the file-system watch does; they are indexed
        after the quiet period."""
        kept = [p for p in paths if self._relevant(Path(p))]
        if not kept:
            return
        now = time.monotonic()
        with self._wake:
            if not self._pending.paths:
                self._pending.first = now
            self._pending.paths.update(kept)
            self._pending.last = now
            self._wake.notify_all()

    # -- threads ------------------------------------------------------------------------------
    def _listen(self) -> None:
        import watchfiles

        def relevant(_change: Any, path: str) -> bool:
            return self._relevant(Path(path))

        try:
            # The Rust side hands a burst over after 50 ms without a change (the quiet period is
            # counted here, across hand-overs), and an empty set every `rust_timeout` ms: the
            # first hand-over says that the watch is in place.
            changes_seen = watchfiles.watch(
                self.corpus_dir, watch_filter=relevant, debounce=max(int(self.max_s * 1000), 50),
                step=50, stop_event=self._stop, rust_timeout=300, yield_on_timeout=True,
                raise_interrupt=False, ignore_permission_denied=True)
            for changes in changes_seen:
                self._ready.set()
                self.notify([path for _, path in changes])
        except Exception:  # noqa: BLE001 - tell the log; the server keeps serving
            log.exception("Surveillance du corpus %s interrompue", self.corpus_dir)
        finally:
            self._ready.set()

    def _work(self) -> None:
        while not self._stop.is_set():
            with self._wake:
                while not self._pending.paths and not self._stop.is_set():
                    self._wake.wait()
                if self._stop.is_set():
                    return
                now = time.monotonic()
                due = min(self._pending.last + self.quiet_s, self._pending.first + self.max_s)
                if now < due:
                    self._wake.wait(due - now)
                    continue
                paths, self._pending = self._pending.paths, _Pending()
            self._update(paths)

    def _update(self, paths: set[str] | None, wait: float | None = None) -> None:
        """One update for the changes in `paths` (None: the catch-up at the start, which
        leaves it to another writer at work and tells every refusal)."""
        sources = None if paths is None else sorted(self._source(Path(p)) for p in paths)
        log.debug("Corpus modifié (%s) : mise à jour de l'index", sources or "rattrapage")
        try:
            report = self.assistant.update_index(
                wait=self.lock_wait if wait is None else wait)
            event = WatchEvent.of(report, sources)
        except AssistantError as exc:
            if paths is None and isinstance(exc, IndexLockedError):
                return  # another writer at work: its update covers what changed
            event = WatchEvent(_now(), error=str(exc))
        except Exception as exc:  # noqa: BLE001 - keep watching; the next change retries
            log.exception("Mise à jour de l'index après un changement du corpus")
            event = WatchEvent(_now(), error=f"erreur inattendue ({type(exc).__name__})")
        if not event.notable:
            return
        for skipped in event.refused:
            log.warning("Corpus surveillé : %s refusé (%s)", skipped.source, skipped.reason)
        if event.error:
            log.error("Corpus surveillé : %s", event.summary())
        elif event.added or event.changed or event.removed:
            log.info("Corpus surveillé : %s (génération %s)",
                     WatchEvent(event.at, event.added, event.changed, event.removed).summary(),
                     event.generation)
        with self._wake:
            self._events.append(event)
            self._count += 1

    # -- paths --------------------------------------------------------------------------------
    def _relevant(self, path: Path) -> bool:
        """A change worth an update: inside the corpus, outside the index, nothing hidden on the
        way. Names without an article suffix count too (a folder moved in or out)."""
        try:
            parts = path.resolve().relative_to(self.corpus_dir).parts
        except ValueError:
            return False
        if path.resolve().is_relative_to(self.index_dir) or any(map(is_hidden, parts)):
            return False
        return bool(parts) and (is_candidate(parts[-1]) or "." not in parts[-1])

    def _source(self, path: Path) -> str:
        try:
            return path.resolve().relative_to(self.corpus_dir).as_posix()
        except ValueError:
            return path.name


def _now() -> str:
    return time.strftime("%H:%M:%S")
