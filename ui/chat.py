"""The Gradio page: a "Discussion" tab (streamed answers with their sources) and a "Corpus" tab.

Gradio endpoints, usable with `gradio_client`:

    /chat    (message, k, mode, sources, since, until) -> the answer as HTML (the chat itself;
             history kept by Gradio)
    /ask     (question, k, mode, history, sources, since, until) -> Answer.to_dict()
    /search  (question, k, sources, since, until) -> [Passage.to_dict(), ...]

`sources` (article file names), `since` and `until` (YYYY-MM-DD) are the optional filters of the
"Réglages" (see `Assistant.search`).

Each source under an answer, and each article of the Corpus tab, opens the reader: a side panel
with the article's whole text, the cited passage highlighted and scrolled into view. Thumbs
up/down under an answer (and an optional comment) are stored by `assistant.feedback`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from assistant.config import Settings
from assistant.core import Assistant
from assistant.errors import AssistantError, QuestionError
from assistant.feedback import MAX_COMMENT_CHARS, Citation, Feedback, FeedbackStore
from assistant.index.watch import CorpusWatcher
from assistant.records import Answer

from . import render
from .assets import JS, READ_REQUEST_JS, SCROLL_JS
from .corpus import article_choices, corpus_handlers, corpus_tab
from .uploads import add_uploads

log = logging.getLogger(__name__)

TITLE = "Assistant de l'innovation numérique en France"
INTRO = (
    "Posez une question en français sur l'écosystème de l'innovation numérique (clusters, "
    "tiers-lieux, French Tech, régions…). Les réponses sont tirées uniquement des articles du "
    "corpus et citent leurs sources : ouvrez **Sources** sous une réponse pour lire les passages, "
    "puis **Lire dans l'article** pour les voir dans leur article."
)
PLACEHOLDER = "Posez votre question…"
EXAMPLES = [
    "Quelle est la surface de la Serre numérique de Valenciennes ?",
    "Qui dirige la Louvre Lens Vallée depuis mai 2015 ?",
    "Quels clusters fusionnent en Languedoc-Roussillon ?",
    "Qu'est-ce que La Poudrière à Nancy ?",
]
MODES = {"extractive": "Extractif (phrases des articles)", "llm": "LLM (réponse rédigée)"}
UNEXPECTED = "Une erreur inattendue est survenue ; réessayez, ou consultez les journaux du serveur."
FEEDBACK_UP = "Merci ! Un commentaire (facultatif) ?"
FEEDBACK_DOWN = "Merci de le signaler. Qu'est-ce qui est faux ou manque ? (facultatif)"
FEEDBACK_FIRST = "Votez d'abord 👍 ou 👎 sous une réponse, puis écrivez un commentaire."
FEEDBACK_FAILED = "Votre avis n'a pas pu être enregistré ; réessayez plus tard."
CONVERSATIONS_KEY = "assistant-conversations"  # where the browser keeps past conversations
def mode_choices(settings: Settings) -> list[tuple[str, str]]:
    """The answer modes offered: LLM only when an endpoint is configured."""
    modes = ["extractive", "llm"] if settings.llm_configured else ["extractive"]
    return [(MODES[m], m) for m in modes]


def default_mode(settings: Settings) -> str:
    return settings.answerer if settings.llm_configured else "extractive"


def history_messages(history: list[dict[str, Any]] | None) -> list[dict[str, str]]:
    """Gradio chat history -> OpenAI-style messages with plain text (no sources markup).

    Error replies are dropped together with the question that caused them."""
    messages: list[dict[str, str]] = []
    for message in history or []:
        role = message.get("role")
        if role not in {"user", "assistant"} or (message.get("metadata") or {}).get("title"):
            continue
        text = _content_text(message.get("content"))
        if role == "assistant" and render.is_error(text):
            if messages and messages[-1]["role"] == "user":
                messages.pop()
            continue
        if role == "assistant":
            text = render.answer_text(text)
        if text.strip():
            messages.append({"role": role, "content": text})
    return messages


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text") or "")
    if isinstance(content, (list, tuple)):
        return "\n".join(_content_text(part) for part in content if part is not None)
    return ""


class ModeError(AssistantError):
    """The answer mode asked for is not offered by this server."""


def _check_mode(settings: Settings, mode: str | None) -> str:
    allowed = {value for _, value in mode_choices(settings)}
    if mode in (None, ""):
        return default_mode(settings)
    if mode not in allowed:
        raise ModeError("Le mode LLM n'est pas configuré sur ce serveur : utilisez le mode "
                        "extractif (ou définissez ASSISTANT_LLM_BASE_URL et ASSISTANT_LLM_MODEL).")
    return str(mode)


def _user_message(exc: Exception) -> str:
    """What to tell the user about `exc`: its message for assistant errors, else a generic one."""
    if isinstance(exc, AssistantError):
        return str(exc)
    log.exception("Erreur inattendue")
    return UNEXPECTED


def _user_error(exc: Exception) -> gr.Error:
    return gr.Error(_user_message(exc), title="Impossible de répondre", print_exception=False)


def make_handlers(assistant: Assistant, settings: Settings,
                  watcher: CorpusWatcher | None = None) -> dict[str, Any]:
    """The functions behind the page's events, bound to one assistant (the Corpus tab's from
    `corpus.corpus_handlers`)."""
    corpus = corpus_handlers(assistant, settings, watcher)

    def chat(message: str, history: list[dict[str, Any]], k: float | None,
             mode: str | None, sources: list[str] | None = None, since: str | None = None,
             until: str | None = None) -> Iterator[str]:
        """Answer `message` in the conversation `history`; yields the message HTML as it grows.
        `sources`, `since`, `until`: the filters of the "Réglages" (see `Assistant.search`).

        Errors become a French message in the chat (a raised gr.Error would leave Gradio's chat
        input disabled)."""
        try:
            mode = _check_mode(settings, mode)
            text = ""
            for piece in assistant.ask_stream(message, history_messages(history), mode=mode,
                                              k=int(k) if k else None, sources=sources,
                                              since=since, until=until):
                if isinstance(piece, Answer):
                    yield render.answer_message(piece)
                    return
                text += piece
                yield render.partial_answer(text)
        except Exception as exc:
            yield render.error_message(_user_message(exc))

    def ask(question: str, k: int = settings.k, mode: str = "",
            history: list[dict[str, str]] | None = None, sources: list[str] | None = None,
            since: str | None = None, until: str | None = None) -> dict[str, Any]:
        """Answer with numbered citations: {answer, in_corpus, citations, notice, leads}.
        `history`: earlier turns as [{"role": "user"|"assistant", "content": "..."}];
        `sources` (article file names), `since`, `until` (YYYY-MM-DD): optional filters."""
        try:
            chosen = _check_mode(settings, mode)
            turns = [{"role": str(m["role"]), "content": str(m["content"])}
                     for m in history or [] if m.get("role") in {"user", "assistant"}]
            return assistant.ask(question, turns, mode=chosen, k=int(k), sources=sources,
                                 since=since, until=until).to_dict()
        except Exception as exc:
            raise _user_error(exc) from None

    def search(question: str, k: int = settings.k, sources: list[str] | None = None,
               since: str | None = None, until: str | None = None) -> list[dict[str, Any]]:
        """The k passages of the corpus closest to the question (optional filters as `ask`)."""
        try:
            if not 1 <= int(k) <= 50:
                raise QuestionError("k doit être un entier entre 1 et 50.")
            return [p.to_dict() for p in assistant.search(question, k=int(k), sources=sources,
                                                          since=since, until=until)]
        except Exception as exc:
            raise _user_error(exc) from None

    def upload(files: list[Any] | None, progress: gr.Progress = gr.Progress()  # noqa: B008
               ) -> tuple[str, str, list[list[Any]], None]:
        """Check the uploaded files, add the good ones to the corpus, update the index."""
        items = [(Path(str(f)).name, Path(str(f))) for f in files or []]
        try:
            summary = add_uploads(assistant, items,
                                  progress=lambda f, text: progress(f, desc=text)).summary()
        except Exception as exc:  # e.g. a full disk: say so, keep the page usable
            summary = f"**Ajout impossible :** {_user_message(exc)}"
        status, _, rows, *_ = corpus["corpus_view"]()
        return summary, status, rows, None

    def reader(source: str, start: int | None = None, end: int | None = None) -> str:
        """The reader's HTML for `source`, `[start, end)` highlighted."""
        try:
            article = next((a for a in assistant.articles() if a["source"] == source), None)
            text = assistant.article_text(source) if article else None
        except Exception as exc:
            return render.error_message(_user_message(exc))
        return render.reader_html(article, text, start, end)

    def read(request: str) -> tuple[Any, str]:
        """Open the reader on a citation; `request` is JSON {source, start, end} (page script)."""
        try:
            data = json.loads(request)
            html = reader(str(data["source"]), int(data["start"]), int(data["end"]))
        except (ValueError, KeyError, TypeError):
            html = render.reader_html(None, None)
        return gr.Column(visible=True), html

    def read_row(evt: gr.SelectData) -> tuple[Any, str]:
        """Open the reader on the article of the Corpus table's selected row."""
        row = evt.row_value or []
        source = str(row[3]) if len(row) > 3 else ""
        return gr.Column(visible=True), reader(source)

    def vote(history: list[dict[str, Any]], mode: str | None, votes: dict[int, int] | None,
             data: gr.LikeData) -> tuple[dict[int, int], int | None, Any, str, Any]:
        """Store a thumbs up/down on an answer (a second vote on it replaces the first, clicking
        the chosen thumb again withdraws it) and offer the comment box."""
        votes = dict(votes or {})
        index = data.index if isinstance(data.index, int) else data.index[0]
        try:
            if data.liked not in (True, False):  # "": the vote was withdrawn
                if index in votes:
                    store.delete(votes.pop(index))
                return votes, None, gr.Column(visible=False), "", gr.Textbox(value="")
            item = feedback_for(history, index, data.liked, mode)
            if index in votes:
                store.update(votes[index], vote=item.vote)
            else:
                votes[index] = store.record(item)
        except Exception as exc:  # a full disk, a locked file: say so, keep the chat usable
            log.warning("Avis non enregistré : %s", exc)
            return votes, None, gr.Column(visible=True), FEEDBACK_FAILED, gr.Textbox()
        thanks = FEEDBACK_UP if item.vote == "up" else FEEDBACK_DOWN
        return votes, votes[index], gr.Column(visible=True), thanks, gr.Textbox(value="")

    def comment(vote_id: int | None, text: str) -> tuple[str, Any]:
        """Add the comment to the last vote."""
        text = (text or "").strip()
        if vote_id is None or not text:
            return FEEDBACK_FIRST, gr.Textbox()
        try:
            store.update(vote_id, comment=text)
        except Exception as exc:
            log.warning("Commentaire non enregistré : %s", exc)
            return FEEDBACK_FAILED, gr.Textbox()
        return "Commentaire enregistré, merci !", gr.Textbox(value="")

    def feedback_for(history: list[dict[str, Any]], index: int, liked: Any,
                     mode: str | None) -> Feedback:
        """The vote on answer `history[index]`, with the question that it answers."""
        message = _content_text(history[index].get("content"))
        question = next((_content_text(m.get("content")) for m in reversed(history[:index])
                         if m.get("role") == "user"), "")
        status = assistant.status()
        return Feedback(
            question=" ".join(question.split()), answer=render.answer_text(message),
            vote="up" if liked is True else "down", comment="",
            citations=tuple(Citation(c["source"], c["start"], c["end"])
                            for c in render.message_citations(message)),
            in_corpus='class="answer not-in-corpus"' not in message,
            mode=mode or default_mode(settings), model=str(status.get("model") or ""),
            generation=str(status.get("generation") or ""),
        )

    def source_choices() -> Any:
        """The article filter's choices: every indexed article (its date beside its name)."""
        return gr.Dropdown(choices=article_choices(assistant))

    store = FeedbackStore(settings.feedback_path)
    return {"chat": chat, "ask": ask, "search": search, "source_choices": source_choices,
            "upload": upload, "read": read, "read_row": read_row, "vote": vote,
            "comment": comment, **corpus}


def build_blocks(assistant: Assistant, settings: Settings,
                 watcher: CorpusWatcher | None = None) -> gr.Blocks:
    """The whole page, bound to `assistant` (loaded once by the caller) and, when the corpus is
    watched, to `watcher` (the Corpus tab then says what it indexed)."""
    handlers = make_handlers(assistant, settings, watcher)
    with gr.Blocks(title=TITLE, analytics_enabled=False, fill_height=True) as demo:
        gr.Markdown(f"# {TITLE}\n{INTRO}", elem_id="intro")
        with gr.Tabs():
            with gr.Tab("Discussion", id="chat", elem_id="tab-chat"):
                sources = _chat_tab(handlers, settings, assistant)
            with gr.Tab("Corpus", id="corpus", elem_id="tab-corpus"):
                table = corpus_tab(handlers, settings, demo, watcher is not None, sources)
        _reader_panel(handlers, table)
        demo.load(None, js=JS)
        demo.load(handlers["source_choices"], None, sources, api_visibility="undocumented",
                  queue=False)  # articles added since the page was built
        gr.api(handlers["ask"], api_name="ask", concurrency_id="assistant")
        gr.api(handlers["search"], api_name="search", concurrency_id="assistant")
    return demo


def _chat_tab(handlers: dict[str, Any], settings: Settings,
              assistant: Assistant) -> gr.Dropdown:
    """The chat and its "Réglages"; returns the article filter (its choices are refreshed)."""
    k = gr.Slider(1, 20, value=min(settings.k, 20), step=1, label="Nombre de passages (k)",
                  info="Passages donnés à l'assistant pour répondre", render=False,
                  elem_id="setting-k")
    choices = mode_choices(settings)
    mode = gr.Radio(
        choices, value=default_mode(settings), label="Mode de réponse", render=False,
        interactive=len(choices) > 1, elem_id="setting-mode",
        info=None if settings.llm_configured else
        "Mode LLM : définissez ASSISTANT_LLM_BASE_URL et ASSISTANT_LLM_MODEL.",
    )
    sources = gr.Dropdown(
        article_choices(assistant), value=[], multiselect=True, label="Articles consultés",
        info="Vide : tous les articles du corpus", render=False, elem_id="setting-sources",
    )
    since = gr.Textbox(label="Depuis le (AAAA-MM-JJ)", placeholder="ex. 2020-01-01",
                       render=False, elem_id="setting-since", max_length=10,
                       info="Articles datés de ce jour ou après (les articles sans date sont "
                            "alors exclus)")
    until = gr.Textbox(label="Jusqu'au (AAAA-MM-JJ)", placeholder="ex. 2021-12-31",
                       render=False, elem_id="setting-until", max_length=10,
                       info="Articles datés de ce jour ou avant")
    chatbot = gr.Chatbot(
        label="Discussion", elem_id="chatbot", height="60vh", latex_delimiters=[],
        sanitize_html=True, allow_tags=False, buttons=["copy"],
        feedback_options=("Like", "Dislike"),
        placeholder="Les réponses citent leurs sources [1], [2]… détaillées sous chaque réponse.",
    )
    textbox = gr.Textbox(
        placeholder=PLACEHOLDER, show_label=False, elem_id="question",
        submit_btn="Envoyer", stop_btn="Arrêter", autofocus=True,
        max_length=settings.max_question_chars,
    )
    chat = gr.ChatInterface(
        handlers["chat"], chatbot=chatbot, textbox=textbox, save_history=True,
        additional_inputs=[k, mode, sources, since, until],
        additional_inputs_accordion=gr.Accordion("Réglages", open=False, render=False),
        examples=[[q] for q in EXAMPLES], examples_label="Exemples de questions",
        run_examples_on_click=True, cache_examples=False, api_name="chat",
        api_description="Réponse (HTML) avec sources ; l'historique est tenu par Gradio.",
        fill_height=True, autofocus=True,
    )
    # gr.ChatInterface blanks the box's placeholder when a question is sent (and on retry), then
    # gives back only `interactive=True`: after the first answer the box showed as an empty band.
    # The hint is put back each time the conversation changes (the last change wins).
    gr.on([chatbot.change, textbox.stop], lambda: gr.Textbox(placeholder=PLACEHOLDER), None,
          textbox, api_visibility="undocumented", queue=False, trigger_mode="always_last")
    _keep_conversations(chat)
    _feedback_box(handlers, chat, mode)
    return sources


def _keep_conversations(chat: gr.ChatInterface) -> None:
    """Past conversations stay in the browser (Gradio's saved history, in localStorage), listed
    beside the chat: "Nouvelle conversation" starts one, a click on one shows it again, the
    chat's bin (Effacer) deletes the one shown. Gradio names the stored value after the
    component's number and encrypts it with a key drawn at each start (conversations were lost
    at each restart of the server): both are fixed here. The key is no secret (the page gets
    it); the server keeps no conversation, it only sees them pass as the chat's own events."""
    saved = chat.saved_conversations
    saved.storage_key = saved.secret = CONVERSATIONS_KEY
    chat.new_chat_button.value = "Nouvelle conversation"
    chat.new_chat_button.elem_id = "new-conversation"
    chat.chat_history_dataset.elem_id = "conversations"


def _feedback_box(handlers: dict[str, Any], chat: gr.ChatInterface, mode: gr.Radio) -> None:
    """Shown after a thumbs up/down: an optional comment on the answer voted on."""
    votes = gr.State({})  # chat message index -> vote id, for this page
    last = gr.State(None)  # the vote a comment goes to
    with gr.Column(visible=False, elem_id="feedback") as box:
        note = gr.Markdown(elem_id="feedback-note")
        with gr.Row(equal_height=True):
            comment = gr.Textbox(show_label=False, elem_id="feedback-comment", scale=5,
                                 placeholder="Votre commentaire sur cette réponse…",
                                 max_length=MAX_COMMENT_CHARS, lines=1)
            send = gr.Button("Envoyer le commentaire", size="sm", elem_id="feedback-send",
                             scale=1)
    chatbot = chat.chatbot
    chatbot.like(handlers["vote"], [chatbot, mode, votes], [votes, last, box, note, comment],
                 api_visibility="undocumented", queue=False)
    for event in (send.click, comment.submit):
        event(handlers["comment"], [last, comment], [note, comment],
              api_visibility="undocumented", queue=False)
    # Votes are kept by message number: another conversation starts them afresh.
    for event in (chatbot.clear, chat.new_chat_button.click, chat.chat_history_dataset.click):
        event(lambda: ({}, None, gr.Column(visible=False)), None, [votes, last, box],
              api_visibility="undocumented", queue=False)


def _reader_panel(handlers: dict[str, Any], table: gr.Dataframe) -> None:
    """The reader (hidden until a source or an article is opened), over the right of the page."""
    with gr.Column(visible=False, elem_id="reader") as panel:
        with gr.Row(equal_height=True, elem_id="reader-head"):
            gr.Markdown("### Lecture de l'article")
            close = gr.Button("Fermer ✕", size="sm", elem_id="reader-close", scale=0)
        body = gr.HTML(render.READER_EMPTY, elem_id="reader-body")
    request = gr.Textbox(visible="hidden", elem_id="reader-request")
    opener = gr.Button(visible="hidden", elem_id="reader-open")
    opener.click(handlers["read"], [request], [panel, body], js=READ_REQUEST_JS,
                 api_visibility="undocumented", queue=False, show_progress="hidden",
                 ).then(None, js=SCROLL_JS)
    table.select(handlers["read_row"], None, [panel, body], api_visibility="undocumented",
                 queue=False, show_progress="hidden").then(None, js=SCROLL_JS)
    close.click(lambda: gr.Column(visible=False), None, panel, api_visibility="undocumented",
                queue=False)
