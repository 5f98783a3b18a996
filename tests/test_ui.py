"""The web chat without a browser: HTML rendering, history, uploads, Gradio endpoints."""

from __future__ import annotations

import html as html_module
import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from assistant import Answer, Assistant, Passage, Settings
from assistant.feedback import FeedbackStore
from assistant.index.builder import build
from ui import render
from ui.chat import history_messages, make_handlers, mode_choices
from ui.uploads import UploadRefused, add_uploads, check_file, safe_name, target_path

from .ui_server import GRADIO_WARNINGS, running_app

pytestmark = GRADIO_WARNINGS

SURFACE = "Quelle est la surface de la Serre numérique de Valenciennes ?"
SURFACE_ANSWER = re.compile(r"17[\s\u00a0\u202f.]?000")
XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'
NEW_ARTICLE = """\
Le Phare de Kerlaouen, nouveau tiers-lieu numérique du Finistère
Publié le 12/03/2024

Le Phare de Kerlaouen ouvre ses portes à Brest : 2 400 m² dédiés aux start-up de la mer et
du numérique. Le tiers-lieu accueille déjà quatorze jeunes pousses spécialisées dans les
capteurs océanographiques et la donnée maritime.
"""


def passage(text: str, n: int = 1, **changes: Any) -> Passage:
    values = dict(chunk_id=n, score=1.0, text=text, source=f"article-{n}.txt",
                  title=f"Titre {n}", start=10 * n, end=10 * n + len(text))
    values.update(changes)
    return Passage(**values)  # type: ignore[arg-type]


# -- rendering ------------------------------------------------------------------------------------
def test_answer_message_lists_cited_passages_with_highlight() -> None:
    p1 = passage("Intro. La Serre numérique couvre 17\u202f000 m² à Valenciennes. Suite.")
    p2 = passage("Elle a été inaugurée le 9 avril 2015.", 2)
    answer = Answer("La Serre numérique couvre 17 000 m² à Valenciennes. [1] "
                    "Elle a été inaugurée le 9 avril 2015. [2]", [p1, p2])
    html = render.answer_message(answer)
    assert html.startswith('<div class="answer">')
    assert "\n\n" not in html  # one HTML block for the Markdown renderer
    assert '<details class="sources"><summary>Sources (2)</summary>' in html
    assert html.index("[1]</span>") < html.index("[2]</span>")
    assert "<mark>La Serre numérique couvre 17\u202f000 m² à Valenciennes.</mark>" in html
    assert "<mark>Elle a été inaugurée le 9 avril 2015.</mark>" in html
    assert "Titre 1" in html and "article-2.txt" in html and "caractères 10–" in html


def test_article_text_is_escaped_everywhere() -> None:
    evil = passage(f"Texte piégé {XSS} fin.", title=f"Titre {XSS}", source="x<y>.txt")
    answer = Answer(f"Texte piégé {XSS} fin. [1]", [evil], notice="<b>note</b>")
    html = render.answer_message(answer)
    assert "<script" not in html and "<img" not in html and "<b>" not in html
    assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in html
    assert "onerror=&quot;" in html
    refused = render.answer_message(Answer(XSS, [], in_corpus=False, leads=[evil]))
    assert "<script" not in refused and "<img" not in refused


def test_not_in_corpus_message_shows_leads() -> None:
    leads = [passage("a", 1), passage("b", 2), passage("c", 3, source="article-1.txt")]
    html = render.answer_message(Answer("Je n'ai pas trouvé.", [], in_corpus=False, leads=leads))
    assert 'class="answer not-in-corpus"' in html and "Je n&#x27;ai pas trouvé." in html
    assert "<strong>Pistes</strong>" in html
    assert html.count("<li>") == 2  # one lead per article
    assert "Sources" not in html
    empty = render.answer_message(Answer("", [], in_corpus=False))
    assert "Je ne trouve pas" in empty and "Pistes" not in empty


def test_answer_text_reverses_the_message() -> None:
    text = "Ligne 1 avec <balise> & \"guillemets\" [1]\nLigne 2 [2]"
    html = render.answer_message(Answer(text, [passage("x"), passage("y", 2)]))
    assert render.answer_text(html) == text
    assert render.answer_text(render.partial_answer("début <de> réponse")) == "début <de> réponse"


def test_cited_sentences() -> None:
    cited = render.cited_sentences("A est vrai. [1] B aussi [2]. C encore [1][3]. D [2, 4].")
    assert cited[1] == ["A est vrai.", "C encore"]
    assert cited[2] == ["B aussi", "D"]
    assert cited[3] == ["C encore"] and cited[4] == ["D"]


def test_highlight_falls_back_to_the_closest_sentence() -> None:
    text = "Le cluster compte 120 membres. Il a été fondé à Lens en 2013 par la région."
    html = render.highlight(text, ["Fondé en 2013 à Lens par la région"])
    assert html == ("Le cluster compte 120 membres. "
                    "<mark>Il a été fondé à Lens en 2013 par la région.</mark>")
    assert "<mark>" not in render.highlight(text, ["Rien à voir avec le texte"])


def test_history_messages_strip_sources_markup() -> None:
    html = render.answer_message(Answer("Réponse <1> [1]", [passage("x")]))
    history = [
        {"role": "user", "content": [{"type": "text", "text": "Question ?"}], "metadata": None},
        {"role": "assistant", "content": [{"type": "text", "text": html}], "metadata": None},
        {"role": "assistant", "content": "réflexion", "metadata": {"title": "Outil"}},
        {"role": "user", "content": "   "},
        {"role": "assistant", "content": render.error_message("La question est vide.")},
        {"role": "user", "content": "Suite ?"},
    ]
    assert history_messages(history) == [
        {"role": "user", "content": "Question ?"},
        {"role": "assistant", "content": "Réponse <1> [1]"},
        {"role": "user", "content": "Suite ?"},
    ]


def test_llm_mode_offered_only_when_configured() -> None:
    assert [v for _, v in mode_choices(Settings())] == ["extractive"]
    configured = Settings(llm_base_url="http://localhost:11434/v1", llm_model="mistral")
    assert [v for _, v in mode_choices(configured)] == ["extractive", "llm"]


def test_sources_open_the_reader_and_are_read_back() -> None:
    odd = 'dossier/a "b" <c>.txt'
    answer = Answer("Texte un. [1] Texte deux. [2]",
                    [passage("Texte un.", source=odd), passage("Texte deux.", 2)])
    message = render.answer_message(answer)
    assert message.count('<button type="button" class="read-article"') == 2
    assert "<c>" not in message and "&lt;c&gt;" in message
    assert render.message_citations(message) == [
        {"n": 1, "source": odd, "start": 10, "end": 19},
        {"n": 2, "source": "article-2.txt", "start": 20, "end": 31},
    ]
    refused = render.answer_message(Answer("", [], in_corpus=False, leads=[passage("x")]))
    assert 'class="read-article"' in refused  # leads open the reader too...
    assert render.message_citations(refused) == []  # ...but are not citations


def test_reader_html_escapes_and_marks_the_passage() -> None:
    text = f"Début {XSS}.\nLe passage cité est ici.\nFin."
    start = text.index("Le passage")
    end = start + len("Le passage cité est ici.")
    article = {"source": "x<y>.txt", "title": f"Titre {XSS}", "date": "2015-04-01"}
    html = render.reader_html(article, text, start, end)
    assert '<mark id="reader-mark">Le passage cité est ici.</mark>' in html
    assert "<script" not in html and "<img" not in html and "&lt;script&gt;" in html
    assert "x&lt;y&gt;.txt" in html and "daté du 1er avril 2015" in html
    assert html.count("<mark") == 1
    whole = render.reader_html({**article, "date": None}, text)
    assert "<mark" not in whole and "date inconnue" in whole
    assert "<mark" not in render.reader_html(article, text, 5, len(text) + 1)
    assert "Article introuvable" in render.reader_html(None, None)


def test_reader_and_feedback_handlers(seed_settings: Settings, seed_assistant: Assistant,
                                      tmp_path: Path) -> None:
    settings = seed_settings.replace(feedback_db=tmp_path / "avis.sqlite")
    handlers = make_handlers(seed_assistant, settings)
    answer = seed_assistant.ask(SURFACE)
    cited = answer.citations[0]
    panel, html = handlers["read"](json.dumps({"source": cited.source, "start": cited.start,
                                               "end": cited.end}))
    assert panel.visible is True
    marked = re.search(r'<mark id="reader-mark">(.*?)</mark>', html, re.DOTALL)
    assert marked and html_module.unescape(marked[1].replace("<br>", "\n")) == cited.text
    assert "introuvable" in handlers["read"]('{"source": "absent.txt", "start": 0, "end": 1}')[1]
    assert "introuvable" in handlers["read"]("pas du JSON")[1]
    row = render.article_rows(seed_assistant.articles())[0]
    _, whole = handlers["read_row"](gr.SelectData(None, {"index": [0, 0], "value": row[0],
                                                         "row_value": row}))
    assert "<mark" not in whole and html_module.escape(row[3]) in whole

    message = render.answer_message(answer)
    history = [{"role": "user", "content": [{"type": "text", "text": SURFACE}]},
               {"role": "assistant", "content": [{"type": "text", "text": message}]}]

    def like(liked: bool | str, votes: dict[int, int]) -> tuple[Any, ...]:
        data = gr.LikeData(None, {"index": 1, "value": message, "liked": liked})
        return handlers["vote"](history, "extractive", votes, data)

    votes, last, box, note, _ = like(False, {})
    assert votes == {1: last} and box.visible is True and "signaler" in note
    assert handlers["comment"](last, "  La date manque.  ")[0] == "Commentaire enregistré, merci !"
    store = FeedbackStore(settings.feedback_path)
    [entry] = store.entries()
    assert (entry.vote, entry.comment, entry.question) == ("down", "La date manque.", SURFACE)
    assert entry.answer == answer.text and entry.in_corpus
    assert [c.source for c in entry.citations] == [p.source for p in answer.citations]
    assert entry.generation == seed_assistant.status()["generation"]
    votes, *_ = like(True, votes)  # a changed mind replaces the vote, keeps the comment
    assert [(e.vote, e.comment) for e in store.entries()] == [("up", "La date manque.")]
    votes, last, box, *_ = like("", votes)  # clicking the thumb again withdraws the vote
    assert votes == {} and last is None and box.visible is False and store.entries() == []
    assert "Votez d'abord" in handlers["comment"](None, "texte")[0]


def test_status_markdown() -> None:
    md = render.status_markdown({"model": "m<x>", "articles": 5, "chunks": 93,
                                 "size_bytes": 1_500_000, "built_at": "2024", "generation": "g"})
    assert "m&lt;x&gt;" in md and "1,4 Mo" in md and "93" in md


# -- upload checks --------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "expected"), [
    ("article.txt", "article.txt"),
    ("Notes de réunion.MD", "Notes-de-réunion.md"),
    ("../../etc/passwd.txt", "passwd.txt"),
    ("..\\..\\windows\\evil.html", "evil.html"),
    ("a<b>|c?.md", "a-b-c.md"),
    (".cache.txt", "cache.txt"),
    ("x" * 300 + ".txt", "x" * 116 + ".txt"),
])
def test_safe_name(name: str, expected: str) -> None:
    assert safe_name(name) == expected


@pytest.mark.parametrize("name", ["virus.exe", "photo.png", "sans-extension", "..", "../.txt",
                                  "...md", "archive.txt.zip"])
def test_safe_name_refuses(name: str) -> None:
    with pytest.raises(UploadRefused):
        safe_name(name)


def test_target_path_stays_in_corpus(tmp_path: Path) -> None:
    (tmp_path / "existe.txt").write_text("déjà là")
    assert target_path(tmp_path, "nouveau.txt") == (tmp_path / "nouveau.txt").resolve()
    for name in ("../dehors.txt", "sous/dossier.txt", "existe.txt"):
        with pytest.raises(UploadRefused):
            target_path(tmp_path, name)


def test_check_file_refusals(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", max_upload_bytes=1000)
    files = {"gros.txt": ("mot " * 400).encode(), "vide.md": b"  \n ",
             "binaire.txt": bytes(range(256)) * 3, "ok.txt": NEW_ARTICLE.encode()}
    for name, raw in files.items():
        (tmp_path / name).write_bytes(raw)
    reasons = {}
    for name in files:
        try:
            check_file(settings, name, tmp_path / name)
        except UploadRefused as exc:
            reasons[name] = str(exc)
    assert "trop gros" in reasons["gros.txt"]
    assert "vide" in reasons["vide.md"]
    assert "binaire" in reasons["binaire.txt"]
    assert "ok.txt" not in reasons


def test_add_uploads_updates_the_index(make_corpus: Callable[..., Settings], embedder: Any,
                                       tmp_path: Path) -> None:
    settings = make_corpus().replace(upload_enabled=True)
    build(settings, lambda: embedder, progress=False)
    bot = Assistant.load(settings, embedder=embedder)
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    (uploads / "phare.txt").write_text(NEW_ARTICLE, encoding="utf-8")
    (uploads / "script.sh").write_text("echo hi")
    steps: list[str] = []
    result = add_uploads(bot, [("phare.txt", uploads / "phare.txt"),
                               ("../script.sh", uploads / "script.sh"),
                               ("phare.txt", uploads / "phare.txt")],
                         progress=lambda f, text: steps.append(text))
    assert result.accepted == ["phare.txt"]
    assert [r for _, r in result.refused][0].startswith("type de fichier non accepté")
    assert "existe déjà" in result.refused[1][1]
    assert result.report is not None and result.report.added == ["phare.txt"]
    assert (settings.corpus_dir / "phare.txt").read_text(encoding="utf-8") == NEW_ARTICLE
    assert not list(settings.corpus_dir.glob(".*.part"))
    assert bot.search("Phare de Kerlaouen Brest", k=1)[0].source == "phare.txt"
    assert steps[-1] == "Index à jour"
    assert "Ajouté(s)" in result.summary() and "Refusé" in result.summary()


def test_app_bounds_gradio_queue(seed_settings: Settings, seed_assistant: Assistant) -> None:
    from ui.app import create_app

    settings = seed_settings.replace(queue_size=7, concurrency=3)
    app = create_app(settings, assistant=seed_assistant)
    queue = app.state.blocks._queue
    assert (queue.max_size, queue.default_concurrency_limit) == (7, 3)
    assert app.state.gate.queue_size == 7
    assert app.state.gate.limiter.total_tokens == 3


# -- Gradio endpoints through gradio_client -------------------------------------------------------
@pytest.fixture(scope="module")
def client(seed_settings: Settings, seed_assistant: Assistant) -> Iterator[Client]:
    with running_app(seed_settings, seed_assistant) as url:
        yield Client(url, verbose=False, download_files=False)


def test_client_sees_named_endpoints(client: Client) -> None:
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert {"/chat", "/ask", "/search"} <= set(endpoints)
    assert "/upload" not in endpoints  # uploads are off by default


def test_client_chat_gets_cited_answer(client: Client) -> None:
    html = client.predict(SURFACE, 5, "extractive", api_name="/chat")
    assert SURFACE_ANSWER.search(render.answer_text(html)), html
    assert "[1]" in html and "<summary>Sources (" in html


def test_client_ask_and_search(client: Client) -> None:
    answer = client.predict(SURFACE, 5, "extractive", api_name="/ask")
    assert answer["in_corpus"] is True and answer["citations"]
    assert SURFACE_ANSWER.search(answer["answer"]), answer["answer"]
    history = [{"role": "user", "content": SURFACE},
               {"role": "assistant", "content": answer["answer"]}]
    follow = client.predict("Et quand a-t-elle été inaugurée ?", 5, "extractive", history,
                            api_name="/ask")
    assert "2015" in follow["answer"], follow["answer"]
    passages = client.predict(SURFACE, 3, api_name="/search")
    assert len(passages) == 3 and passages[0]["source"] == "serre-numerique-valenciennes.txt"


@pytest.mark.parametrize(("args", "expected"), [
    (("   ", 5, "extractive"), "vide"),
    (("x" * 3000, 5, "extractive"), "trop longue"),
    ((SURFACE, 5, "llm"), "LLM n'est pas configuré"),
])
def test_client_errors_are_french(client: Client, args: tuple[Any, ...], expected: str) -> None:
    with pytest.raises(AppError, match=expected):
        client.predict(*args, api_name="/ask")
    if args[2] == "llm":  # the chat's mode radio only offers "extractive": Gradio refuses it
        with pytest.raises(AppError, match="llm"):
            client.predict(*args, api_name="/chat")
        return
    html = client.predict(*args, api_name="/chat")  # the chat answers with the message
    assert render.is_error(html) and expected in html and "Traceback" not in html


def test_client_chat_streams(client: Client) -> None:
    job = client.submit(SURFACE, 5, "extractive", api_name="/chat")
    final = job.result(timeout=120)
    outputs = job.outputs()
    assert len(outputs) >= 2, outputs
    assert outputs[0].startswith('<div class="answer streaming">')
    assert outputs[-1] == final and "<summary>Sources (" in final


def test_client_upload(make_corpus: Callable[..., Settings], embedder: Any,
                       tmp_path: Path) -> None:
    settings = make_corpus().replace(upload_enabled=True, max_upload_bytes=3000)
    build(settings, lambda: embedder, progress=False)
    bot = Assistant.load(settings, embedder=embedder)
    files = tmp_path / "envoi"
    files.mkdir()
    (files / "phare.md").write_text(NEW_ARTICLE, encoding="utf-8")
    (files / "gros.txt").write_text("mot " * 1000, encoding="utf-8")
    (files / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
    (files / "vide.html").write_text("<html><body></body></html>", encoding="utf-8")
    with running_app(settings, bot) as url:
        client = Client(url, verbose=False, download_files=False)
        result, status, table, _ = client.predict(
            [handle_file(str(files / n)) for n in ("phare.md", "gros.txt", "image.png",
                                                   "vide.html")],
            api_name="/upload",
        )
        assert "**Ajouté(s) :** `phare.md`" in result
        assert "`gros.txt` — fichier trop gros" in result
        assert "`image.png` — type de fichier non accepté" in result
        assert "`vide.html` — article illisible" in result
        assert "Index mis à jour" in result
        assert "phare.md" in [row[3] for row in table["data"]]
        passages = client.predict("Phare de Kerlaouen à Brest", 1, api_name="/search")
        assert passages[0]["source"] == "phare.md"
