"""The Gradio page: a "Discussion" tab (streamed answers with their sources) and a "Corpus" tab.

Gradio endpoints, usable with `gradio_client`:

    /chat    (message, k, mode) -> the answer as HTML (the chat itself; history kept by Gradio)
    /ask     (question, k, mode) -> Answer.to_dict()
    /search  (question, k)       -> [Passage.to_dict(), ...]
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from assistant.config import Settings
from assistant.core import Assistant
from assistant.corpus import SUFFIXES
from assistant.errors import AssistantError, QuestionError
from assistant.records import Answer

from . import render
from .uploads import add_uploads

log = logging.getLogger(__name__)

TITLE = "Assistant de l'innovation numérique en France"
INTRO = (
    "Posez une question en français sur l'écosystème de l'innovation numérique (clusters, "
    "tiers-lieux, French Tech, régions…). Les réponses sont tirées uniquement des articles du "
    "corpus et citent leurs sources : ouvrez **Sources** sous une réponse pour lire les passages."
)
EXAMPLES = [
    "Quelle est la surface de la Serre numérique de Valenciennes ?",
    "Qui dirige la Louvre Lens Vallée depuis mai 2015 ?",
    "Quels clusters fusionnent en Languedoc-Roussillon ?",
    "Qu'est-ce que La Poudrière à Nancy ?",
]
MODES = {"extractive": "Extractif (phrases des articles)", "llm": "LLM (réponse rédigée)"}
UNEXPECTED = "Une erreur inattendue est survenue ; réessayez, ou consultez les journaux du serveur."
CSS = """
.answer.not-in-corpus { font-style: italic; }
.answer.error { color: var(--error-text-color, #b91c1c); }
.notice { font-size: .9em; opacity: .8; margin-top: .4em; }
details.sources { margin-top: .6em; border-top: 1px solid var(--border-color-primary); }
details.sources > summary { cursor: pointer; font-weight: 600; padding: .3em 0; }
.source { margin: .5em 0 .8em; }
.source-num { font-weight: 700; }
.source .offsets { font-size: .85em; opacity: .75; }
.source blockquote.passage { margin: .3em 0 0; padding-left: .7em;
  border-left: 3px solid var(--border-color-primary); font-size: .92em; }
.source mark { background: #fde68a; color: inherit; padding: 0 .1em; }
.leads { margin-top: .6em; }
"""


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


def make_handlers(assistant: Assistant, settings: Settings) -> dict[str, Any]:
    """The functions behind the page's events, bound to one assistant."""

    def chat(message: str, history: list[dict[str, Any]], k: float | None,
             mode: str | None) -> Iterator[str]:
        """Answer `message` in the conversation `history`; yields the message HTML as it grows.

        Errors become a French message in the chat (a raised gr.Error would leave Gradio's chat
        input disabled)."""
        try:
            mode = _check_mode(settings, mode)
            text = ""
            for piece in assistant.ask_stream(message, history_messages(history), mode=mode,
                                              k=int(k) if k else None):
                if isinstance(piece, Answer):
                    yield render.answer_message(piece)
                    return
                text += piece
                yield render.partial_answer(text)
        except Exception as exc:
            yield render.error_message(_user_message(exc))

    def ask(question: str, k: int = settings.k, mode: str = "",
            history: list[dict[str, str]] | None = None) -> dict[str, Any]:
        """Answer with numbered citations: {answer, in_corpus, citations, notice, leads}.
        `history`: earlier turns as [{"role": "user"|"assistant", "content": "..."}]."""
        try:
            chosen = _check_mode(settings, mode)
            turns = [{"role": str(m["role"]), "content": str(m["content"])}
                     for m in history or [] if m.get("role") in {"user", "assistant"}]
            return assistant.ask(question, turns, mode=chosen, k=int(k)).to_dict()
        except Exception as exc:
            raise _user_error(exc) from None

    def search(question: str, k: int = settings.k) -> list[dict[str, Any]]:
        """The k passages of the corpus closest to the question."""
        try:
            if not 1 <= int(k) <= 50:
                raise QuestionError("k doit être un entier entre 1 et 50.")
            return [p.to_dict() for p in assistant.search(question, k=int(k))]
        except Exception as exc:
            raise _user_error(exc) from None

    def corpus_view() -> tuple[str, list[list[Any]]]:
        """Index status (Markdown) and the table of indexed articles."""
        try:
            return (render.status_markdown(assistant.status()),
                    render.article_rows(assistant.articles()))
        except AssistantError as exc:
            return f"**Index indisponible :** {exc}", []

    def upload(files: list[Any] | None, progress: gr.Progress = gr.Progress()  # noqa: B008
               ) -> tuple[str, str, list[list[Any]], None]:
        """Check the uploaded files, add the good ones to the corpus, update the index."""
        items = [(Path(str(f)).name, Path(str(f))) for f in files or []]
        try:
            summary = add_uploads(assistant, items,
                                  progress=lambda f, text: progress(f, desc=text)).summary()
        except Exception as exc:  # e.g. a full disk: say so, keep the page usable
            summary = f"**Ajout impossible :** {_user_message(exc)}"
        status, rows = corpus_view()
        return summary, status, rows, None

    return {"chat": chat, "ask": ask, "search": search, "corpus_view": corpus_view,
            "upload": upload}


def build_blocks(assistant: Assistant, settings: Settings) -> gr.Blocks:
    """The whole page, bound to `assistant` (loaded once by the caller)."""
    handlers = make_handlers(assistant, settings)
    with gr.Blocks(title=TITLE, analytics_enabled=False, fill_height=True) as demo:
        gr.Markdown(f"# {TITLE}\n{INTRO}", elem_id="intro")
        with gr.Tabs():
            with gr.Tab("Discussion", id="chat", elem_id="tab-chat"):
                _chat_tab(handlers, settings)
            with gr.Tab("Corpus", id="corpus", elem_id="tab-corpus"):
                _corpus_tab(handlers, settings, demo)
        gr.api(handlers["ask"], api_name="ask", concurrency_id="assistant")
        gr.api(handlers["search"], api_name="search", concurrency_id="assistant")
    return demo


def _chat_tab(handlers: dict[str, Any], settings: Settings) -> None:
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
    chatbot = gr.Chatbot(
        label="Discussion", elem_id="chatbot", height="60vh", latex_delimiters=[],
        sanitize_html=True, allow_tags=False, buttons=["copy"], feedback_options=None,
        placeholder="Les réponses citent leurs sources [1], [2]… détaillées sous chaque réponse.",
    )
    textbox = gr.Textbox(
        placeholder="Posez votre question…", show_label=False, elem_id="question",
        submit_btn="Envoyer", stop_btn="Arrêter", autofocus=True,
        max_length=settings.max_question_chars,
    )
    gr.ChatInterface(
        handlers["chat"], chatbot=chatbot, textbox=textbox, additional_inputs=[k, mode],
        additional_inputs_accordion=gr.Accordion("Réglages", open=False, render=False),
        examples=[[q] for q in EXAMPLES], examples_label="Exemples de questions",
        run_examples_on_click=True, cache_examples=False, api_name="chat",
        api_description="Réponse (HTML) avec sources ; l'historique est tenu par Gradio.",
        fill_height=True, autofocus=True,
    )


def _corpus_tab(handlers: dict[str, Any], settings: Settings, demo: gr.Blocks) -> None:
    gr.Markdown("## Index")
    status = gr.Markdown(elem_id="index-status")
    gr.Markdown("## Articles indexés")
    table = gr.Dataframe(headers=render.ARTICLE_HEADERS, datatype=["str", "str", "number", "str"],
                         interactive=False, elem_id="articles", wrap=True)
    refresh = gr.Button("Actualiser", size="sm")
    refresh.click(handlers["corpus_view"], None, [status, table], api_visibility="undocumented",
                  queue=False)
    demo.load(handlers["corpus_view"], None, [status, table], api_visibility="undocumented",
              queue=False)
    if not settings.upload_enabled:
        return
    gr.Markdown("## Ajouter des articles")
    kinds = ", ".join(sorted(set(SUFFIXES)))
    files = gr.File(label=f"Fichiers ({kinds} ; {render.human_size(settings.max_upload_bytes)} "
                          "maximum chacun)", file_count="multiple",
                    elem_id="upload")
    add = gr.Button("Ajouter au corpus et mettre à jour l'index", variant="primary",
                    elem_id="upload-button")
    result = gr.Markdown(elem_id="upload-result")
    add.click(handlers["upload"], [files], [result, status, table, files], api_name="upload",
              concurrency_limit=1, concurrency_id="upload")
