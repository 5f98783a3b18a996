"""Concurrency: readers keep answering while a writer publishes; writers never trample each other.

Readers hold a whole generation (FAISS and BM25 in memory, an open SQLite file) and switch with
`Assistant.refresh()`; writers take the index lock, and a second one waits (`--wait`) or stops
with "Une autre construction de l'index est en cours" and exit status 1.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from assistant import Assistant, Settings
from assistant.index.builder import update
from assistant.index.generations import current_marker, writer_lock
from assistant.search.retriever import HybridRetriever, LoadedIndex
from tests.helpers.articles import (
    NEW_QUESTION,
    NEW_SOURCE,
    NEW_WORD,
    SEED_QUESTIONS,
    add_new_article,
    top_passages,
)

CLI = Path(sys.executable).with_name("assistant")
LOCKED = "Une autre construction de l'index est en cours"


def cli_command(*args: str) -> list[str]:
    command = [str(CLI)] if CLI.exists() else [sys.executable, "-m", "assistant.cli"]
    return [*command, *args]


def index_args(settings: Settings) -> list[str]:
    return ["--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir)]


@pytest.fixture
def index_copy(seed_settings: Settings, tmp_path: Path) -> Settings:
    """A private copy of the seed index and corpus (the corpus may then change)."""
    settings = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index")
    shutil.copytree(seed_settings.corpus_dir, settings.corpus_dir)
    shutil.copytree(seed_settings.index_dir, settings.index_dir)
    return settings


def assert_sound(settings: Settings, embedder: Any, articles: int) -> Assistant:
    """The index loads, holds `articles` articles and no leftovers of a build."""
    bot = Assistant.load(settings, embedder=embedder)
    assert len(bot.articles()) == articles
    leftovers = [p.name for p in (settings.index_dir / "generations").iterdir()
                 if p.name.startswith(".")]
    assert leftovers == [] and not list(settings.index_dir.glob(".CURRENT.*"))
    return bot


@pytest.mark.slow
def test_searches_answer_from_the_previous_generation_during_a_real_update(
    index_copy: Settings, embedder: Any
) -> None:
    bot = Assistant.load(index_copy, embedder=embedder)
    idle = Assistant.load(index_copy, embedder=embedder)  # searches nothing until the end
    old_generation = bot.retriever.index.name
    expected = {old_generation: top_passages(bot)}
    add_new_article(index_copy.corpus_dir)

    seen: list[tuple[str, int, list[tuple[str, int, int, str]]]] = []
    proc = subprocess.Popen(cli_command("index", "update", "--json", *index_args(index_copy)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        i = 0
        while proc.poll() is None:
            q = i % len(SEED_QUESTIONS)
            passages = bot.search(SEED_QUESTIONS[q])  # refreshes itself when CURRENT moves
            generation = bot.retriever.index.name
            seen.append((generation, q, [(p.source, p.start, p.end, p.text) for p in passages]))
            i += 1
            time.sleep(0.02)  # leave the writer some CPU on a small machine
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err[-2000:]
    assert json.loads(out)["added_articles"] == [NEW_SOURCE]

    new_generation = current_marker(index_copy.index_dir)
    assert new_generation != old_generation
    during = [s for s in seen if s[0] == old_generation]
    assert len(during) >= 10, f"only {len(during)} searches ran during the update"
    assert {g for g, _, _ in seen} <= {old_generation, new_generation}

    # The idle reader held the old generation until it refreshed; now it sees the article.
    assert idle.refresh() is True and idle.refresh() is False
    assert idle.retriever.index.name == new_generation
    best = idle.search(NEW_QUESTION, 1)[0]
    assert best.source == NEW_SOURCE and NEW_WORD in best.text
    expected[new_generation] = top_passages(idle)
    for generation, q, passages in seen:  # every answer is the one its generation gives
        assert passages == expected[generation][q]


def test_refresh_switches_only_when_a_generation_is_published(
    index_copy: Settings, embedder: Any
) -> None:
    bot = Assistant.load(index_copy, embedder=embedder)
    assert bot.refresh() is False
    old = bot._retriever
    add_new_article(index_copy.corpus_dir)
    update(index_copy, lambda: embedder, progress=False)
    assert bot._retriever is old, "a new generation is only picked up by refresh()"
    assert old.search(NEW_QUESTION, 1)[0].source != NEW_SOURCE  # the old one keeps serving
    assert bot.refresh() is True and bot.refresh() is False
    assert bot.search(NEW_QUESTION, 1)[0].source == NEW_SOURCE


def test_reader_on_a_pruned_generation_keeps_answering(
    index_copy: Settings, embedder: Any
) -> None:
    """A request that started on a generation finishes on it, even once it is deleted."""
    pinned = HybridRetriever(LoadedIndex.open(index_copy), embedder, index_copy)
    before = top_passages(pinned)
    path = index_copy.index_dir / "generations" / pinned.index.name
    assert path.is_dir()
    add_new_article(index_copy.corpus_dir)
    update(index_copy, lambda: embedder, progress=False)
    (index_copy.corpus_dir / NEW_SOURCE).unlink()
    update(index_copy, lambda: embedder, progress=False)
    assert not path.exists(), "two publishes later the first generation is pruned"
    assert top_passages(pinned) == before
    assert pinned.index.db.article_text("serre-numerique-valenciennes.txt")


def test_threads_search_while_generations_are_published(
    index_copy: Settings, embedder: Any
) -> None:
    bot = Assistant.load(index_copy, embedder=embedder)
    texts = {a["source"]: bot.article_text(a["source"]) for a in bot.articles()}
    errors: list[BaseException] = []
    generations: set[str] = set()
    stop = threading.Event()

    def search() -> None:
        try:
            while not stop.is_set():
                for question in (*SEED_QUESTIONS, NEW_QUESTION):
                    passages = bot.search(question)
                    generations.add(bot.retriever.index.name)
                    assert passages
                    for p in passages:
                        if p.source in texts:
                            assert texts[p.source][p.start:p.end] == p.text
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    def publish(change: Any) -> str:
        change()
        published = update(index_copy, lambda: embedder, progress=False).generation
        assert published is not None
        deadline = time.monotonic() + 30
        while published not in generations and not errors and time.monotonic() < deadline:
            time.sleep(0.02)  # until a reader has answered from it
        return published

    threads = [threading.Thread(target=search) for _ in range(3)]
    for t in threads:
        t.start()
    published = []
    try:
        for _ in range(2):
            published.append(publish(lambda: add_new_article(index_copy.corpus_dir)))
            published.append(publish((index_copy.corpus_dir / NEW_SOURCE).unlink))
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert not errors, errors
    assert set(published) <= generations, "the readers should follow every new generation"
    assert bot.retriever.index.name == current_marker(index_copy.index_dir)


def test_second_writer_fails_or_waits_while_the_lock_is_held(
    index_copy: Settings, embedder: Any
) -> None:
    removed = "serre-numerique-valenciennes.txt"
    (index_copy.corpus_dir / removed).unlink()  # work for a writer that needs no model
    served = current_marker(index_copy.index_dir)
    with writer_lock(index_copy.index_dir):
        for action in ("update", "build"):
            result = subprocess.run(cli_command("index", action, *index_args(index_copy)),
                                    capture_output=True, text=True, timeout=120)
            assert result.returncode == 1
            assert result.stderr == (
                f"Erreur : {LOCKED} (pid {os.getpid()}). Attendez qu'elle se termine, "
                "puis relancez la commande.\n"
            )
            assert result.stdout == ""
        waiting = subprocess.Popen(
            cli_command("index", "update", "--json", "--wait", "120", *index_args(index_copy)),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        try:
            time.sleep(3)
            assert waiting.poll() is None, "the waiting writer did not wait"
            assert current_marker(index_copy.index_dir) == served
        except BaseException:
            waiting.kill()
            raise
    out, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, err[-2000:]
    assert json.loads(out)["removed_articles"] == [removed]
    assert current_marker(index_copy.index_dir) != served
    assert_sound(index_copy, embedder, articles=4)


@pytest.mark.slow
def test_two_real_updates_at_once_never_corrupt_the_index(
    index_copy: Settings, embedder: Any
) -> None:
    add_new_article(index_copy.corpus_dir)
    commands = [
        cli_command("index", "update", "--json", "--wait", "300", *index_args(index_copy)),
        cli_command("index", "update", "--json", *index_args(index_copy)),
    ]
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for c in commands]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        results.append((proc.returncode, out, err))

    added = []
    for returncode, out, err in results:
        assert "Traceback" not in err
        if returncode == 1:  # the one without --wait found the lock taken
            assert err.startswith(f"Erreur : {LOCKED} (pid ")
        else:
            assert returncode == 0, err[-2000:]
            added += json.loads(out)["added_articles"]
    assert results[0][0] == 0, "the writer given --wait must succeed"
    assert added == [NEW_SOURCE], "the article is indexed exactly once"
    bot = assert_sound(index_copy, embedder, articles=6)
    assert len(os.listdir(index_copy.index_dir / "generations")) == 2  # new + the one before
    best = bot.search(NEW_QUESTION, 1)[0]
    assert best.source == NEW_SOURCE and NEW_WORD in best.text
