"""Crash safety: a build or update killed with SIGKILL anywhere leaves the previous index serving.

Deterministic kill points come from `tests/helpers/kill_at.py`, a driver that monkeypatches one
function of the package (in its own process) to SIGKILL itself at the Nth call. One test kills the
real `assistant index update` command on a timer. After each kill: the index loads and gives the
same top passages as before, and the next update finishes the work and cleans up.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from assistant import Assistant, Settings
from assistant.errors import IndexLockedError
from assistant.index.builder import build, update
from assistant.index.generations import current_marker, writer_lock
from tests.conftest import ROOT, SEED_CORPUS
from tests.helpers.articles import (
    NEW_QUESTION,
    NEW_SOURCE,
    NEW_WORD,
    add_new_article,
    top_passages,
)

DRIVER = Path(__file__).resolve().parent / "helpers" / "kill_at.py"
CLI = Path(sys.executable).with_name("assistant")


def cli_command(*args: str) -> list[str]:
    """The installed `assistant` script when there is one, else `python -m assistant.cli`."""
    if CLI.exists():
        return [str(CLI), *args]
    return [sys.executable, "-m", "assistant.cli", *args]


def generations(settings: Settings) -> list[str]:
    return sorted(p.name for p in (settings.index_dir / "generations").iterdir())


def leftovers(settings: Settings) -> list[str]:
    """Work directories and pointer temp files a killed writer leaves behind."""
    gens = [p for p in generations(settings) if p.startswith(".")]
    return gens + sorted(p.name for p in settings.index_dir.glob(".CURRENT.*")) + sorted(
        p.name for p in settings.index_dir.glob(".SEQUENCE.*"))


def _strings(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set().union(*(_strings(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_strings(v) for v in value)) if value else set()
    return {value} if isinstance(value, str) else set()


def unreferenced(settings: Settings) -> list[str]:
    """Catalog and store files that no generation on disk refers to (a crash's leftovers that
    the next publish must have removed)."""
    names: set[str] = set()
    for manifest in (settings.index_dir / "generations").glob("[!.]*/manifest.json"):
        data = json.loads(manifest.read_text(encoding="utf-8"))
        names |= _strings(data["stores"]) | {data["catalog"]["file"]}
    found = [p for folder in ("catalog", "stores") for p in (settings.index_dir / folder).rglob("*")
             if p.is_file()]
    return sorted(p.relative_to(settings.index_dir).as_posix() for p in found
                  if p.name.removesuffix("-wal").removesuffix("-shm") not in names)


def serving(settings: Settings, embedder: Any) -> list[list[tuple[str, int, int, str]]]:
    """What a fresh reader gets from the index (it must load without error)."""
    bot = Assistant.load(settings, embedder=embedder)
    try:
        return top_passages(bot)
    finally:
        bot.retriever.index.close()


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory, embedder: Any,
          seed_settings: Settings) -> dict[str, Any]:
    """Index copies to crash into, with the answers expected before and after the new article.

    `warm`: the seed articles indexed after the new article was indexed then removed (rows and
    segments of three generations, pruned). `cold`: the seed index as built (the `embed` kill
    point). The driver embeds the new article with the real model in both.
    """
    root = tmp_path_factory.mktemp("crash-bases")
    warm = Settings(corpus_dir=root / "warm" / "corpus", index_dir=root / "warm" / "index")
    shutil.copytree(SEED_CORPUS, warm.corpus_dir)
    add_new_article(warm.corpus_dir)
    build(warm, lambda: embedder, progress=False)
    (warm.corpus_dir / NEW_SOURCE).unlink()
    report = update(warm, lambda: embedder, progress=False)
    assert report.removed == [NEW_SOURCE]

    cold = Settings(corpus_dir=root / "cold" / "corpus", index_dir=root / "cold" / "index")
    shutil.copytree(seed_settings.corpus_dir, cold.corpus_dir)
    shutil.copytree(seed_settings.index_dir, cold.index_dir)

    before = serving(warm, embedder)
    assert serving(cold, embedder) == before
    after_dir = root / "after"
    after = Settings(corpus_dir=after_dir / "corpus", index_dir=after_dir / "index")
    shutil.copytree(warm.corpus_dir, after.corpus_dir)
    shutil.copytree(warm.index_dir, after.index_dir)
    add_new_article(after.corpus_dir)
    assert update(after, lambda: embedder, progress=False).added == [NEW_SOURCE]
    return {"warm": warm, "cold": cold, "before": before, "after": serving(after, embedder)}


def copy_base(base: Settings, tmp_path: Path) -> Settings:
    settings = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index")
    shutil.copytree(base.corpus_dir, settings.corpus_dir)
    shutil.copytree(base.index_dir, settings.index_dir)
    add_new_article(settings.corpus_dir)
    return settings


def kill_at(settings: Settings, mode: str, target: str, nth: int, when: str) -> int:
    """Run the fault-injecting driver (on the settings' stores: local, Qdrant in local mode
    at `qdrant_path`, or PostgreSQL at `postgres_url`); assert it died of SIGKILL; return its
    pid."""
    qdrant = ([str(settings.qdrant_path)] if settings.store == "qdrant" else
              [str(settings.postgres_url)] if settings.store == "postgres" else [])
    proc = subprocess.run(
        [sys.executable, str(DRIVER), mode, str(settings.corpus_dir), str(settings.index_dir),
         target, str(nth), when, *qdrant],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "TOKENIZERS_PARALLELISM": "false"},
    )
    assert proc.returncode == -signal.SIGKILL, (
        f"the driver was not killed at {target}#{nth} ({when}): rc={proc.returncode}\n"
        f"{proc.stdout}\n{proc.stderr[-3000:]}"
    )
    pid = int((settings.index_dir / ".lock").read_text().strip())
    with pytest.raises(ProcessLookupError):  # the lock file names a writer that is dead
        os.kill(pid, 0)
    return pid


def assert_recovers(settings: Settings, embedder: Any, bases: dict[str, Any], *,
                    served_before: str, published: bool) -> None:
    """The next update completes the work, cleans up and keeps the generation readers hold."""
    report = update(settings, lambda: embedder, progress=False)  # wait=0: a dead lock is free
    assert report.added == ([] if published else [NEW_SOURCE])
    assert (report.generation is None) == published
    assert leftovers(settings) == []
    assert unreferenced(settings) == []
    if not published:
        # The new generation plus the one served before the crash (readers may still hold it);
        # a half-published generation left by the crash is not kept in its place.
        assert generations(settings) == sorted([served_before, current_marker(settings.index_dir)])
    assert (settings.index_dir / ".lock").read_text().strip() == str(os.getpid())
    assert serving(settings, embedder) == bases["after"]
    bot = Assistant.load(settings, embedder=embedder)
    best = bot.search(NEW_QUESTION, 1)[0]
    assert best.source == NEW_SOURCE and NEW_WORD in best.text


# (mode, target, nth call, before/after the call, base, whether the kill lands after CURRENT moved)
KILL_POINTS = [
    ("update", "add_article", 1, "after", "warm", False),
    ("update", "embed", 1, "before", "cold", False),
    ("update", "catalog_commit", 1, "after", "warm", False),  # rows committed, unpublished
    ("update", "dense_save", 1, "after", "warm", False),
    ("update", "dense_save", 2, "after", "warm", False),
    ("update", "bm25_save", 1, "after", "warm", False),
    ("update", "write_manifest", 1, "after", "warm", False),
    ("update", "os_replace", 1, "after", "warm", False),  # a generation number taken
    ("update", "os_replace", 2, "before", "warm", False),  # work dir complete, not renamed
    ("update", "os_replace", 2, "after", "warm", False),  # renamed, CURRENT not switched
    ("update", "os_replace", 3, "before", "warm", False),  # the new pointer written beside
    ("update", "os_replace", 3, "after", "warm", True),  # CURRENT switched, nothing pruned
    ("update", "prune", 1, "before", "warm", True),
    ("build", "add_article", 3, "after", "warm", False),
    ("build", "bm25_save", 1, "after", "warm", False),
    ("build", "os_replace", 2, "after", "warm", False),
]


@pytest.mark.parametrize(
    ("mode", "target", "nth", "when", "base", "published"), KILL_POINTS,
    ids=[f"{m}-{t}{n}-{w}" for m, t, n, w, _, _ in KILL_POINTS],
)
def test_kill_point_leaves_index_serving_and_next_update_completes(
    mode: str, target: str, nth: int, when: str, base: str, published: bool,
    bases: dict[str, Any], embedder: Any, tmp_path: Path,
) -> None:
    settings = copy_base(bases[base], tmp_path)
    served_before = current_marker(settings.index_dir)
    assert served_before is not None

    kill_at(settings, mode, target, nth, when)

    if published:
        assert current_marker(settings.index_dir) != served_before
        assert serving(settings, embedder) == bases["after"]
    else:
        assert current_marker(settings.index_dir) == served_before
        assert serving(settings, embedder) == bases["before"]
    assert_recovers(settings, embedder, bases, served_before=served_before, published=published)


def test_two_crashes_in_a_row_then_recovery(
    bases: dict[str, Any], embedder: Any, tmp_path: Path
) -> None:
    settings = copy_base(bases["warm"], tmp_path)
    served_before = current_marker(settings.index_dir)
    assert served_before is not None
    kill_at(settings, "update", "dense_save", 1, "after")
    assert leftovers(settings), "the first crash should leave its work directory"
    # The second writer dies while cleaning up after the first one, then a third one succeeds.
    kill_at(settings, "update", "clean_abandoned", 1, "before")
    kill_at(settings, "build", "os_replace", 2, "after")
    assert current_marker(settings.index_dir) == served_before
    assert serving(settings, embedder) == bases["before"]
    assert_recovers(settings, embedder, bases, served_before=served_before, published=False)


@pytest.mark.slow
def test_sigkill_of_the_real_cli_update(bases: dict[str, Any], embedder: Any,
                                        tmp_path: Path) -> None:
    """Timing-based: kill `assistant index update` while it loads the model and embeds."""
    settings = copy_base(bases["cold"], tmp_path)
    served_before = current_marker(settings.index_dir)
    proc = subprocess.Popen(
        cli_command("index", "update", "--corpus", str(settings.corpus_dir),
                    "--index", str(settings.index_dir), "--json"),
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        gens = settings.index_dir / "generations"
        deadline = time.monotonic() + 60
        while not any(p.name.startswith(".tmp-") for p in gens.iterdir()):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no work directory appeared"
            time.sleep(0.02)
        time.sleep(0.2)  # inside the build now: loading the model alone takes longer
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == -signal.SIGKILL, "the update finished before it could be killed"

    assert current_marker(settings.index_dir) == served_before
    assert leftovers(settings), "the killed build should have left its work directory"
    assert (settings.index_dir / ".lock").read_text().strip() == str(proc.pid)
    assert serving(settings, embedder) == bases["before"]
    assert_recovers(settings, embedder, bases, served_before=str(served_before), published=False)


def test_writer_waiting_on_a_lock_proceeds_when_the_holder_is_killed(tmp_path: Path) -> None:
    """flock dies with its process: a waiting writer gets the lock at once, stale pid or not."""
    index_dir = tmp_path / "index"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time\nfrom pathlib import Path\n"
         "from assistant.index.generations import writer_lock\n"
         "with writer_lock(Path(sys.argv[1])):\n    print('locked', flush=True)\n"
         "    time.sleep(120)\n", str(index_dir)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(IndexLockedError, match=f"en cours \\(pid {holder.pid}\\)"):
            with writer_lock(index_dir):
                pass
        acquired: list[tuple[float, str]] = []

        def wait_for_lock() -> None:
            with writer_lock(index_dir, wait=60):
                acquired.append((time.monotonic(), (index_dir / ".lock").read_text().strip()))

        waiter = threading.Thread(target=wait_for_lock)
        waiter.start()
        time.sleep(0.5)
        assert not acquired, "the lock was taken while its holder was alive"
        killed_at = time.monotonic()
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        waiter.join(timeout=30)
        assert acquired, "the waiting writer never got the lock of the killed one"
        assert acquired[0][0] - killed_at < 5
        assert acquired[0][1] == str(os.getpid())
        # A lock file still naming a dead writer blocks nobody.
        (index_dir / ".lock").write_text(str(holder.pid))
        with writer_lock(index_dir):
            pass
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
