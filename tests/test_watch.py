"""A corpus that indexes itself: the watcher in process (bursts, refusals, removals, the writer
lock), then `assistant serve --watch` launched for real: a file dropped in the corpus is
answered from within 15 s, without a restart."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from assistant import Assistant, Settings
from assistant.index.builder import build
from assistant.index.generations import current_generation, writer_lock
from assistant.index.watch import CorpusWatcher
from assistant.ingest.corpus import Skipped

from .conftest import ROOT
from .helpers.serve import launched_server
from .test_index import NEW_ARTICLE

pytest.importorskip("watchfiles")

LIGHTHOUSE = """\
Le Phare de Kerlaouen, nouveau tiers-lieu numérique du Finistère
Publié le 12/03/2024

Le Phare de Kerlaouen ouvre ses portes à Brest. Le tiers-lieu accueille quatorze jeunes
pousses spécialisées dans les capteurs océanographiques et la donnée maritime.
"""
LIGHTHOUSE_QUESTION = "Combien de jeunes pousses accueille le Phare de Kerlaouen à Brest ?"
ANSWER_WITHIN_S = 15.0


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        assert time.monotonic() < deadline, f"délai dépassé : {what}"
        time.sleep(0.1)
    return value


def generation_number(settings: Settings) -> int:
    return int(current_generation(settings.index_dir).name.split("-")[0])


@pytest.fixture
def watched(make_corpus: Callable[..., Settings],
            embedder: Any) -> Iterator[tuple[Settings, Assistant, CorpusWatcher]]:
    """The seed corpus indexed and watched (short quiet period), stopped at the end."""
    settings = make_corpus()
    build(settings, lambda: embedder, progress=False)
    bot = Assistant.load(settings, embedder=embedder)
    watcher = CorpusWatcher(bot, quiet_ms=600, max_ms=10_000, lock_wait=30)
    watcher.start()
    try:
        yield settings, bot, watcher
    finally:
        watcher.stop()


def test_a_burst_of_copies_is_one_update_and_a_bad_file_blocks_nothing(
    watched: tuple[Settings, Assistant, CorpusWatcher],
) -> None:
    settings, bot, watcher = watched
    corpus, before = settings.corpus_dir, generation_number(settings)
    for name, text in (("phare.txt", LIGHTHOUSE), ("vide.txt", ""), ("campus.md", NEW_ARTICLE),
                       (".campus.md.part", "partiel"), ("notes.docx", "pas un article")):
        (corpus / name).write_text(text, encoding="utf-8")
        time.sleep(0.1)  # a burst: closer together than the quiet period
    wait_for(lambda: watcher.count, 60, "la mise à jour après les copies")
    time.sleep(1.5)  # past the quiet period: no second update for the same burst
    [event] = watcher.events()
    assert watcher.count == 1 and generation_number(settings) == before + 1
    assert event.added == ("campus.md", "phare.txt") and event.error is None
    assert event.refused == (Skipped("vide.txt", "fichier vide"),)
    assert "refusé : vide.txt (fichier vide)" in event.summary()
    answer = bot.ask(LIGHTHOUSE_QUESTION)  # served at once, by the same assistant
    assert "quatorze" in answer.text and answer.citations[0].source == "phare.txt"

    (corpus / "campus.md").write_text(NEW_ARTICLE.replace("45 startups", "60 startups"),
                                      encoding="utf-8")
    (corpus / "phare.txt").unlink()
    (corpus / "vide.txt").unlink()
    wait_for(lambda: watcher.count == 2, 60, "la mise à jour après la modification")
    event = watcher.events()[0]
    assert (event.changed, event.removed, event.refused) == (("campus.md",), ("phare.txt",), ())
    assert "phare.txt" not in {a["source"] for a in bot.articles()}
    assert any("60 startups" in p.text for p in bot.search("startups du campus d'Épinal", k=3))


def test_the_watcher_waits_for_another_writer(
    watched: tuple[Settings, Assistant, CorpusWatcher],
) -> None:
    """`index update`'s lock: while another writer holds it, the watcher waits, then indexes."""
    settings, bot, watcher = watched
    with writer_lock(settings.index_dir):
        shutil.copy(ROOT / "corpus" / "serre-numerique-valenciennes.txt",
                    settings.corpus_dir / "copie-serre.txt")
        time.sleep(2.0)
        assert watcher.count == 0
    wait_for(lambda: watcher.count, 60, "la mise à jour après la fin de l'autre écriture")
    assert watcher.events()[0].added == ("copie-serre.txt",)
    assert "copie-serre.txt" in {a["source"] for a in bot.articles()}


@pytest.mark.slow
def test_serve_watch_answers_from_a_dropped_file(make_corpus: Callable[..., Settings],
                                                 embedder: Any, tmp_path: Path) -> None:
    """`assistant serve --watch` in its own process: a file copied into the corpus is answered
    by the API and the chat within 15 s, no restart; a bad file copied with it is refused in the
    log with its reason."""
    from gradio_client import Client

    settings = make_corpus()
    build(settings, lambda: embedder, progress=False)
    drop = tmp_path / "drop"
    drop.mkdir()
    (drop / "phare-kerlaouen.md").write_text(LIGHTHOUSE, encoding="utf-8")
    (drop / "image.pdf").write_bytes(b"%PDF-1.4 pas vraiment un PDF")
    log = tmp_path / "serve.log"
    args = ["--watch", "--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir)]
    with launched_server(args, {}, log) as base, httpx.Client(base_url=base, timeout=60) as api:
        before = api.post("/api/ask", json={"question": LIGHTHOUSE_QUESTION}).json()
        assert "phare-kerlaouen.md" not in {c["source"] for c in before["citations"]}

        start = time.monotonic()
        for name in ("image.pdf", "phare-kerlaouen.md"):
            shutil.copy(drop / name, settings.corpus_dir / name)

        def answered() -> dict[str, Any] | None:
            answer = api.post("/api/ask", json={"question": LIGHTHOUSE_QUESTION}).json()
            cited = {c["source"] for c in answer.get("citations", [])}
            return answer if "phare-kerlaouen.md" in cited else None

        answer = wait_for(answered, ANSWER_WITHIN_S, "la réponse tirée du fichier déposé")
        assert "quatorze" in answer["answer"]
        assert time.monotonic() - start < ANSWER_WITHIN_S

        chat = Client(base, verbose=False, download_files=False)
        html = chat.predict(LIGHTHOUSE_QUESTION, 5, "extractive", api_name="/chat")
        assert "quatorze" in html and "phare-kerlaouen.md" in html
        status = api.get("/api/health").json()
        assert status["articles"] == 6 and status["by_month"]["2024-03"] == 1
    text = log.read_text(encoding="utf-8")
    assert "Surveillance du corpus" in text
    assert "Corpus surveillé : image.pdf refusé (" in text
    assert "indexé(s) : phare-kerlaouen.md" in text


def test_the_notice_escapes_names_and_reasons() -> None:
    from assistant.index.watch import WatchEvent
    from ui.corpus import watch_markdown

    event = WatchEvent("12:00:00", added=("a`<b>.md",), removed=("vieux.txt",),
                       refused=(Skipped("x<script>.txt", "article illisible (<b>)"),))
    text = watch_markdown([event])
    assert "- **12:00:00** — indexé(s) : `a'<b>.md` ; retiré(s) de l'index : `vieux.txt`" in text
    assert "refusé : `x<script>.txt` (article illisible (&lt;b&gt;))" in text
    assert event.summary() == ("indexé(s) : a`<b>.md ; retiré(s) de l'index : vieux.txt ; "
                               "refusé : x<script>.txt (article illisible (<b>))")
    assert not WatchEvent("12:00:00").notable and event.notable
