"""The chat page's own CSS and JavaScript (Gradio `css=` / `js=`), kept apart from its logic."""

CSS = """
.answer.not-in-corpus { font-style: italic; }
.answer .short-answer { font-size: 1.15em; }
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
button.read-article { margin-left: .4em; padding: .05em .6em; font-size: .85em; cursor: pointer;
  border: 1px solid var(--button-secondary-border-color, #6366f1); border-radius: 999px;
  background: var(--button-secondary-background-fill, #eef2ff);
  color: var(--button-secondary-text-color, #3730a3); }
button.read-article:hover { text-decoration: underline; }
/* The question box: a field that shows, whatever the theme (the Soft theme draws none). */
#question { border: 2px solid var(--color-accent, #6366f1) !important;
  border-radius: var(--radius-lg, 8px); background: var(--background-fill-primary, #fff);
  box-shadow: 0 1px 4px rgba(0, 0, 0, .12); }
#question:focus-within { box-shadow: 0 0 0 3px var(--color-accent-soft, #c7d2fe); }
#question textarea { font-size: 1rem; }
#question textarea::placeholder { color: var(--body-text-color-subdued, #4b5563); opacity: 1; }
/* The chat's label takes its own line instead of floating over the first message. */
#chatbot label[data-testid="block-label"] { position: static; margin: .4em 0 0 .4em;
  align-self: flex-start; }
/* The reader: a side panel over the page. */
#reader { position: fixed; top: 0; right: 0; bottom: 0; width: min(780px, 100vw); z-index: 1000;
  margin: 0; padding: 0 1.4em 2em; overflow-y: auto; flex-wrap: nowrap;
  background: var(--background-fill-primary, #fff);
  border-left: 1px solid var(--border-color-primary);
  box-shadow: -10px 0 30px rgba(0, 0, 0, .25); }
#reader-head { position: sticky; top: 0; z-index: 1; margin: 0 -1.4em; padding: .6em 1.4em;
  background: var(--background-fill-primary, #fff);
  border-bottom: 1px solid var(--border-color-primary); }
#reader-body .reader-title { margin: .2em 0; font-size: 1.3em; }
#reader-body .reader-meta, #reader-body .reader-hint { margin: .2em 0; opacity: .8;
  font-size: .9em; }
#reader-body .reader-text { margin-top: .8em; line-height: 1.65; font-size: 1rem; }
#reader-body mark { background: #fde68a; color: inherit; padding: .1em 0;
  box-shadow: 0 0 0 1px #f59e0b; box-decoration-break: clone;
  -webkit-box-decoration-break: clone; scroll-margin: 25vh; }
#feedback { border: 1px solid var(--color-accent, #6366f1); border-radius: var(--radius-lg, 8px);
  padding: .6em .8em; background: var(--background-fill-secondary, #f9fafb); }
#feedback-note p { margin: 0; font-weight: 600; }
/* The Corpus tab's timeline: a bar per month or year, undated articles apart. */
.timeline-bars { display: flex; align-items: flex-end; gap: 4px; overflow-x: auto;
  padding: .4em 0 .2em; min-height: 150px; }
button.timeline-bar { flex: 0 0 auto; min-width: 44px; height: 140px; display: flex;
  flex-direction: column; justify-content: flex-end; align-items: stretch; padding: 0 2px;
  border: 1px solid transparent; border-radius: 6px; background: none; cursor: pointer;
  color: inherit; font: inherit; }
button.timeline-bar:disabled { cursor: default; opacity: .6; }
button.timeline-bar:not(:disabled):hover, button.timeline-bar:focus-visible {
  border-color: var(--color-accent, #6366f1); }
button.timeline-bar[aria-pressed="true"] { border-color: var(--color-accent, #6366f1);
  background: var(--color-accent-soft, #eef2ff); }
.timeline-fill { display: block; min-height: 2px; border-radius: 3px 3px 0 0;
  background: var(--color-accent, #6366f1); }
button.timeline-bar.undated { margin-left: 12px; }
button.timeline-bar.undated .timeline-fill { background: var(--neutral-400, #9ca3af); }
.timeline-count { font-size: .8em; text-align: center; }
.timeline-label { font-size: .75em; text-align: center; white-space: nowrap; margin-top: 2px; }
.timeline-summary { margin: .3em 0 0; font-size: .9em; opacity: .8; }
"""
#: Runs once when the page loads: a click on a "Lire dans l'article" button (inside a chat
#: message, where no event handler survives sanitising) asks the hidden `#reader-open` button to
#: open the reader; a click on a bar of the timeline asks the hidden `#timeline-open` button to
#: list that period's articles; Escape closes the reader.
JS = """
() => {
  document.addEventListener("click", (event) => {
    const bar = event.target.closest("button.timeline-bar");
    if (bar && !bar.disabled) {
      window.assistantTimelineRequest = bar.getAttribute("aria-pressed") === "true" ? ""
        : bar.value;  // a second click on the same bar lists every article again
      document.getElementById("timeline-open")?.click();
      return;
    }
    const button = event.target.closest("button.read-article");
    if (!button) return;
    event.preventDefault();
    const [start, end, ...source] = button.value.split(" ");  // see render.read_button
    window.assistantReaderRequest = JSON.stringify({
      source: source.join(" "), start: Number(start), end: Number(end)});
    document.getElementById("reader-open")?.click();
  });
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape") document.getElementById("reader-close")?.click();
  });
}
"""
#: The (scale, period) of the last click on a timeline bar, given to the `corpus_view` handler.
TIMELINE_REQUEST_JS = "(scale, period) => [scale, window.assistantTimelineRequest ?? '']"
#: The JSON request of the last "Lire dans l'article" click, given to the `read` handler.
READ_REQUEST_JS = "() => window.assistantReaderRequest || ''"
#: After the reader is filled: bring the highlighted passage into view (else the top).
SCROLL_JS = """
() => {
  const show = (tries) => {
    const article = document.querySelector("#reader-body article, #reader-body [role=alert]");
    if (!article) { if (tries > 0) setTimeout(() => show(tries - 1), 50); return; }
    const mark = article.querySelector("mark");
    if (mark) mark.scrollIntoView({block: "center"});
    else document.getElementById("reader")?.scrollTo({top: 0});
  };
  requestAnimationFrame(() => show(40));
}
"""
