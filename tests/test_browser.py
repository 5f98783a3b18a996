"""The web chat in a real headless Chromium: streamed answers, sources, corpus tab, uploads, XSS.

Chromium: $CHROMIUM_PATH, else /usr/bin/chromium, else Playwright's own build. Screenshots go to
tests/artifacts/ (git-ignored); the chat with its sources opened is also copied to
docs/screenshot-chat.png for the README.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant import Assistant, Settings
from assistant.indexer import build

from .ui_server import GRADIO_WARNINGS, running_app

pytestmark = [pytest.mark.browser, *GRADIO_WARNINGS]
playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
DOCS_SCREENSHOT = ROOT / "docs" / "screenshot-chat.png"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ANSWER_TIMEOUT = 90_000  # ms; the first answer warms the model up
SURFACE = "Quelle est la surface de la Serre numérique de Valenciennes ?"
SURFACE_ANSWER = re.compile(r"17[\s\u00a0\u202f.]?000")
XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'
XSS_ARTICLE = f"""\
Le Labo des Pirates {XSS}
Publié le 05/02/2024

Le Labo des Pirates est un incubateur numérique installé sur le port de Quimper.
Le Labo des Pirates accompagne douze start-up de la donnée maritime ; son panneau d'accueil
affiche le code {XSS} tel quel.
L'incubateur a ouvert en 2021 dans l'ancienne criée, avec le soutien de Quimper Bretagne
Occidentale et de la Région Bretagne.
"""
UPLOADED_ARTICLE = """\
Le Phare de Kerlaouen, nouveau tiers-lieu numérique du Finistère
Publié le 12/03/2024

Le Phare de Kerlaouen ouvre ses portes à Brest. Le tiers-lieu accueille quatorze jeunes
pousses spécialisées dans les capteurs océanographiques et la donnée maritime.
"""


def chromium_path() -> str | None:
    for candidate in (os.environ.get("CHROMIUM_PATH"), "/usr/bin/chromium"):
        if candidate and Path(candidate).exists():
            return candidate
    return None  # Playwright's own Chromium


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, locale="fr-FR")
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


@pytest.fixture(scope="module")
def seed_url(seed_settings: Settings, seed_assistant: Assistant) -> Iterator[str]:
    with running_app(seed_settings, seed_assistant) as url:
        yield url


def shot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def ask(page: Any, question: str) -> Any:
    """Type `question`, submit it, return the locator of the bot message that answers it."""
    bots = page.locator("#chatbot [data-testid='bot']")
    before = bots.count()
    box = page.locator("#question textarea")
    box.fill(question)
    box.press("Enter")
    expect(bots).to_have_count(before + 1, timeout=ANSWER_TIMEOUT)
    return bots.nth(before)


def wait_final(message: Any) -> None:
    """Wait until the streamed answer is complete (the final render has no `streaming` class)."""
    expect(message.locator(".answer").first).not_to_have_class(re.compile("streaming"),
                                                                timeout=ANSWER_TIMEOUT)


def test_chat_streams_answer_and_shows_sources(page: Any, seed_url: str) -> None:
    page.goto(seed_url)
    expect(page.get_by_role("heading", name=re.compile("innovation numérique"))).to_be_visible()
    expect(page.get_by_text("Quelle est la surface de la Serre numérique").first).to_be_visible()

    message = ask(page, SURFACE)
    expect(message.locator(".answer")).to_contain_text(SURFACE_ANSWER, timeout=ANSWER_TIMEOUT)
    wait_final(message)
    expect(message.locator(".answer")).to_contain_text("[1]")

    sources = message.locator("details.sources")
    expect(sources.locator(".passage").first).not_to_be_visible()
    sources.locator("summary").click()
    expect(sources).to_have_attribute("open", "")
    first = sources.locator(".source").first
    expect(first.locator(".source-num")).to_have_text("[1]")
    expect(first).to_contain_text("serre-numerique-valenciennes.txt")
    expect(first).to_contain_text(re.compile(r"caractères \d+–\d+"))
    expect(first.locator(".passage")).to_be_visible()
    expect(sources.locator("mark").first).to_be_visible()
    expect(sources).to_contain_text(SURFACE_ANSWER)

    path = shot(page, "chat-sources")
    DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
    shutil.copyfile(path, DOCS_SCREENSHOT)

    follow_up = ask(page, "Et quand a-t-elle été inaugurée ?")
    expect(follow_up.locator(".answer")).to_contain_text("2015", timeout=ANSWER_TIMEOUT)
    shot(page, "chat-follow-up")


def test_out_of_corpus_and_errors_in_french(page: Any, seed_url: str) -> None:
    page.goto(seed_url)
    message = ask(page, "Quelle est la capitale de l'Australie ?")
    expect(message.locator(".answer.not-in-corpus")).to_be_visible(timeout=ANSWER_TIMEOUT)
    expect(message.locator("details.sources")).to_have_count(0)
    shot(page, "chat-not-in-corpus")

    error = ask(page, "   ")
    expect(error.locator(".answer.error")).to_contain_text("La question est vide",
                                                           timeout=ANSWER_TIMEOUT)
    expect(page.get_by_text("Traceback")).to_have_count(0)
    shot(page, "chat-error")

    again = ask(page, "Qui dirige la Louvre Lens Vallée depuis mai 2015 ?")  # input usable again
    expect(again.locator(".answer")).to_contain_text("Maadnous", timeout=ANSWER_TIMEOUT)


def test_settings_and_corpus_tab(page: Any, seed_url: str, seed_assistant: Assistant) -> None:
    page.goto(seed_url)
    page.get_by_text("Réglages").first.click()
    expect(page.locator("#setting-k")).to_be_visible()
    expect(page.locator("#setting-mode")).to_contain_text("Extractif")
    expect(page.locator("#setting-mode")).not_to_contain_text("LLM (réponse rédigée)")

    page.get_by_role("tab", name="Corpus").click()
    status = page.locator("#index-status")
    expect(status).to_contain_text(str(seed_assistant.status()["model"]))
    expect(status).to_contain_text("Passages")
    table = page.locator("#articles")
    for article in seed_assistant.articles():
        expect(table).to_contain_text(article["source"])
    expect(page.locator("#upload")).to_have_count(0)  # uploads are off by default
    shot(page, "corpus-tab")


@pytest.fixture
def xss_app(tmp_path: Path, embedder: Any) -> Iterator[tuple[str, Settings]]:
    """A small corpus holding an article full of markup, with uploads enabled."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(ROOT / "corpus" / "serre-numerique-valenciennes.txt", corpus)
    (corpus / "labo-pirates.txt").write_text(XSS_ARTICLE, encoding="utf-8")
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", upload_enabled=True)
    build(settings, lambda: embedder, progress=False)
    with running_app(settings, Assistant.load(settings, embedder=embedder)) as url:
        yield url, settings


def test_article_markup_is_inert_text(xss_app: tuple[str, Settings], page: Any) -> None:
    url, _ = xss_app
    page.goto(url)
    message = ask(page, "Combien de start-up le Labo des Pirates accompagne-t-il à Quimper ?")
    wait_final(message)
    sources = message.locator("details.sources")
    sources.locator("summary").click()
    expect(sources).to_contain_text("<script>window.__xss=1</script>")
    expect(sources).to_contain_text('onerror="window.__xss=2"')
    expect(page.get_by_text("<script>window.__xss=1</script>").first).to_be_visible()
    assert page.locator("#chatbot script, #chatbot img[src='x']").count() == 0
    shot(page, "xss-chat")

    page.get_by_role("tab", name="Corpus").click()
    expect(page.locator("#articles")).to_contain_text("Le Labo des Pirates <script>")
    shot(page, "xss-corpus")
    assert page.evaluate("typeof window.__xss") == "undefined"


def test_upload_then_ask(xss_app: tuple[str, Settings], page: Any, tmp_path: Path) -> None:
    url, settings = xss_app
    upload = tmp_path / "phare-kerlaouen.md"
    upload.write_text(UPLOADED_ARTICLE, encoding="utf-8")
    refused = tmp_path / "programme.exe"
    refused.write_bytes(b"MZ" + bytes(200))
    page.goto(url)
    page.get_by_role("tab", name="Corpus").click()
    page.locator("#upload input[type=file]").set_input_files([str(upload), str(refused)])
    expect(page.locator("#upload")).to_contain_text(re.compile(r"programme\s*\.exe"))
    page.locator("#upload-button").click()
    result = page.locator("#upload-result")
    expect(result).to_contain_text("phare-kerlaouen.md", timeout=ANSWER_TIMEOUT)
    expect(result).to_contain_text("type de fichier non accepté")
    expect(result).to_contain_text("Index mis à jour")
    expect(page.locator("#articles")).to_contain_text("phare-kerlaouen.md")
    assert (settings.corpus_dir / "phare-kerlaouen.md").exists()
    assert not (settings.corpus_dir / "programme.exe").exists()
    shot(page, "upload")

    page.get_by_role("tab", name="Discussion").click()
    message = ask(page, "Combien de jeunes pousses accueille le Phare de Kerlaouen à Brest ?")
    wait_final(message)
    message.locator("details.sources summary").click()
    expect(message.locator("details.sources")).to_contain_text("phare-kerlaouen.md")
