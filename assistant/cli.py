"""The `assistant` command: parse arguments, call the package, print the result.

    assistant index build|update|status [--corpus DIR] [--index DIR] [--json]
    assistant index export --to qdrant|postgres|local [--json]
    assistant add PATH|URL... [--timeout S] [--json]
    assistant search QUESTION [-k N] [--source NAME]... [--since D] [--until D] [--json]
    assistant ask QUESTION [--source NAME]... [--since D] [--until D] [--json]
    assistant chat
    assistant eval FILE... [--articles DIR] [--k N] [--typed] [--json]
    assistant serve [--host H] [--port P] [--watch]     assistant mcp (MCP server on stdio)
    assistant keys create NAME|list|revoke NAME [--file F]
    assistant feedback export [--out FILE] [--only all|up|down] [--db FILE]

`--json` prints machine-readable output only (logs go to stderr). Errors print one line saying
what to do and exit with status 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, NoReturn

from . import __version__
from .config import Settings
from .errors import AssistantError

log = logging.getLogger("assistant")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--corpus", metavar="DIR", help="corpus directory (ASSISTANT_CORPUS_DIR)")
    parser.add_argument("--index", metavar="DIR", help="index directory (ASSISTANT_INDEX_DIR)")
    parser.add_argument("--model", metavar="NAME",
                        help="sentence-transformers model name or path (ASSISTANT_EMBEDDING_MODEL)")
    parser.add_argument("--json", action="store_true", help="machine-readable output only")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logs on stderr")


def _filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", action="append", dest="sources", metavar="NAME",
                        help="only this article: its file name in the corpus, with or without "
                             "extension (repeatable)")
    parser.add_argument("--since", metavar="YYYY-MM-DD",
                        help="only articles dated on or after this day (undated ones excluded)")
    parser.add_argument("--until", metavar="YYYY-MM-DD",
                        help="only articles dated on or before this day (undated ones excluded)")


def _filter_args(args: argparse.Namespace) -> dict[str, Any]:
    return {"sources": args.sources, "since": args.since, "until": args.until}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="assistant",
        description="Assistant de questions-réponses en français sur l'écosystème de "
                    "l'innovation numérique, à partir d'un corpus d'articles.",
    )
    parser.add_argument("--version", action="version", version=f"assistant {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    index = sub.add_parser("index", help="build, update or inspect the index")
    index_sub = index.add_subparsers(dest="action", required=True)
    for name, text in (
        ("build", "rebuild the whole index beside the old one, then swap it in"),
        ("update", "index new or changed articles, drop deleted ones (builds if missing)"),
        ("status", "what the current index holds"),
    ):
        p = index_sub.add_parser(name, help=text)
        _common(p)
        if name != "status":
            p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                           help="wait this long for another writer to finish (default: 0)")
    to_store = index_sub.add_parser(
        "export", help="copy the index into another store (qdrant, postgres or local) without "
                       "embedding anything again; the copy is then served")
    to_store.add_argument("--to", required=True, choices=("qdrant", "postgres", "local"),
                          help="target store (qdrant: ASSISTANT_QDRANT_URL or "
                               "ASSISTANT_QDRANT_PATH; postgres: ASSISTANT_POSTGRES_URL)")
    to_store.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                          help="wait this long for another writer to finish (default: 0)")
    _common(to_store)

    from .ingest.add import FETCH_TIMEOUT

    add = sub.add_parser("add", help="add article files (.txt .md .html .pdf) or web pages "
                                     "(http/https URLs) to the corpus, then update the index")
    add.add_argument("items", nargs="+", metavar="PATH|URL")
    add.add_argument("--timeout", type=float, default=FETCH_TIMEOUT, metavar="SECONDS",
                     help=f"time allowed for each download (default: {FETCH_TIMEOUT:g})")
    add.add_argument("--wait", type=float, default=30.0, metavar="SECONDS",
                     help="wait this long for another index writer to finish (default: 30)")
    _common(add)

    search = sub.add_parser("search", help="the passages that best match a question")
    search.add_argument("question")
    search.add_argument("-k", type=int, default=None, help="number of passages (default 5)")
    _filters(search)
    _common(search)

    ask = sub.add_parser("ask", help="answer a question with numbered citations")
    ask.add_argument("question")
    ask.add_argument("-k", type=int, default=None, help="passages given to the answerer")
    ask.add_argument("--mode", choices=("extractive", "llm"), help="answerer (default: setting)")
    _filters(ask)
    _common(ask)

    chat = sub.add_parser("chat", help="interactive chat in the terminal")
    chat.add_argument("--mode", choices=("extractive", "llm"))
    _common(chat)

    ev = sub.add_parser("eval", help="measure retrieval and answers on JSON-lines question files")
    ev.add_argument("file", nargs="+", help="question files (JSON lines)")
    ev.add_argument("--articles", action="append", default=[], metavar="DIR",
                    help="extra article directory indexed with the corpus (repeatable); the "
                         "index is kept in the user cache and updated incrementally")
    ev.add_argument("--k", type=int, default=5, help="cut-off for hit@k (default 5)")
    ev.add_argument("--mode", choices=("extractive", "llm"))
    ev.add_argument("--typed", action="store_true",
                    help="ask each question as people type it (lower case, no accents, no "
                         "question mark)")
    _common(ev)

    serve = sub.add_parser("serve", help="web chat and HTTP API")
    serve.add_argument("--host", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 7860)")
    serve.add_argument("--watch", action="store_true",
                       help="index the articles added, changed or removed in the corpus "
                            "directory as they happen, without a restart")
    _common(serve)

    mcp = sub.add_parser("mcp", help="MCP server on stdin/stdout (tools search and ask)")
    _common(mcp)

    keys = sub.add_parser("keys", help="API keys for /api, /v1 and /mcp (ASSISTANT_API_KEYS)")
    keys_sub = keys.add_subparsers(dest="action", required=True)
    for name, text in (("create", "add a key and print it, once"),
                       ("list", "key names and creation dates"),
                       ("revoke", "remove a key: requests with it are refused at once")):
        p = keys_sub.add_parser(name, help=text)
        if name != "list":
            p.add_argument("name")
        p.add_argument("--file", metavar="FILE", help="keys file (default: ASSISTANT_API_KEYS)")
        p.add_argument("--json", action="store_true", help="machine-readable output only")
        p.set_defaults(corpus=None, index=None, model=None, verbose=False)

    feedback = sub.add_parser("feedback", help="votes on answers given in the web chat")
    feedback_sub = feedback.add_subparsers(dest="action", required=True)
    export = feedback_sub.add_parser(
        "export", help="write the votes as question lines of the dev-set format (JSON lines)")
    export.add_argument("--out", metavar="FILE", help="output file (default: standard output)")
    export.add_argument("--only", choices=("all", "up", "down"), default="all",
                        help="which votes (default: all)")
    export.add_argument("--db", metavar="FILE",
                        help="votes file (ASSISTANT_FEEDBACK_DB; default INDEX/feedback.sqlite)")
    export.add_argument("--index", metavar="DIR", help="index directory (ASSISTANT_INDEX_DIR)")
    export.set_defaults(corpus=None, model=None, json=False, verbose=False)
    return parser


def settings_from(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        corpus_dir=args.corpus, index_dir=args.index, embedding_model=args.model,
        host=getattr(args, "host", None), port=getattr(args, "port", None),
    )


#: Libraries whose records below WARNING are only shown with -v.
NOISY_LOGGERS = ("faiss", "sentence_transformers", "httpx", "bm25s", "mcp", "watchfiles")


def _quiet_libraries(record: logging.LogRecord) -> bool:
    """Handler filter: below WARNING, drop the records of `NOISY_LOGGERS`. Their logger levels
    are not enough: bm25s sets its own logger to DEBUG when it is imported, after `main` ran."""
    return record.levelno >= logging.WARNING or record.name.split(".")[0] not in NOISY_LOGGERS


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    quiet = args.command in {"search", "ask", "chat", "eval"} and not args.verbose
    level = logging.DEBUG if args.verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    for noisy in NOISY_LOGGERS:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    for handler in logging.getLogger().handlers:
        handler.setLevel(level)
        if not args.verbose:
            handler.addFilter(_quiet_libraries)
    if not args.verbose:
        warnings.filterwarnings("ignore")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    try:
        settings = settings_from(args)
        if settings.log_format == "json":
            for handler in logging.getLogger().handlers:
                handler.setFormatter(JsonFormatter())
        code = COMMANDS[args.command](args, settings)
    except AssistantError as exc:
        print(f"Erreur : {exc}", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        print("Interrompu.", file=sys.stderr)
        code = 130
    if argv is None and args.command in ONE_SHOT:  # the `assistant` program, not a caller
        _exit_now(code)
    return code


#: Commands that answer once: the program ends as soon as their output is out (`_exit_now`).
ONE_SHOT = frozenset({"search", "ask"})


def _exit_now(code: int) -> NoReturn:
    """Flush, run what `atexit` holds (logging, Qdrant connections), and end the process
    without tearing down its objects: freeing the model (the tokenizer's pieces, OpenVINO's
    kernels) and the modules cost ~0.2 s of CPU, a quarter of a cold `assistant ask`, for a
    process whose work is done. (mypy ends the same way.) The command keeps what it loaded
    referenced (`args.loaded`) so that nothing is freed before."""
    import atexit

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`| head`): nothing more to say
            pass
    atexit._run_exitfuncs()
    os._exit(code)


class JsonFormatter(logging.Formatter):
    """`ASSISTANT_LOG_FORMAT=json`: one JSON object a line (time, level, logger, message, and
    the `extra` fields of a record, e.g. method, path, status, duration_ms of the access log)."""

    STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
        }
        data.update((k, v) for k, v in vars(record).items() if k not in self.STANDARD)
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


def cmd_index(args: argparse.Namespace, settings: Settings) -> int:
    from .core import index_status
    from .index import builder as indexer

    if args.action == "status":
        status = index_status(settings)
        if args.json:
            _print_json(status)
        else:
            for key, value in status.items():
                if isinstance(value, dict):  # stores, by_month
                    value = ", ".join(f"{k}: {v}" for k, v in value.items()) or "-"
                print(f"{key:16} {value}")
        return 0
    if args.action == "export":
        from .index.export import export

        copied = export(settings, args.to, wait=args.wait)
        if args.json:
            _print_json(copied.to_dict())
        else:
            print(copied.summary())
        return 0
    run = indexer.build if args.action == "build" else indexer.update
    report = run(settings, progress=False if args.json else None, wait=args.wait)
    if args.json:
        _print_json(report.to_dict())
    else:
        print(report.summary())
    return 0


def cmd_search(args: argparse.Namespace, settings: Settings) -> int:
    from .core import Assistant

    bot = args.loaded = Assistant.load(settings, one_shot=True)  # freed by the exit (main)
    passages = bot.search(args.question, k=args.k, **_filter_args(args))
    selection = bot.selection(**_filter_args(args))
    if selection is not None and selection.notice:
        print(f"({selection.notice})", file=sys.stderr)
    if args.json:
        _print_json([p.to_dict() for p in passages])
        return 0
    for i, p in enumerate(passages, 1):
        print(f"[{i}] {p.title} — {p.source} [{p.start}:{p.end}] (score {p.score:.3f})")
        print("    " + p.text.replace("\n", "\n    "))
        print()
    return 0


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    from .core import Assistant

    bot = args.loaded = Assistant.load(settings, one_shot=True)  # freed by the exit (main)
    if args.json:
        _print_json(bot.ask(args.question, mode=args.mode, k=args.k,
                            **_filter_args(args)).to_dict())
        return 0
    _print_answer_stream(bot, args.question, None, args.mode, args.k, _filter_args(args))
    return 0


def _print_answer_stream(bot: Any, question: str, history: Any, mode: str | None,
                         k: int | None, filters: dict[str, Any] | None = None) -> Any:
    from .records import Answer

    answer = None
    for piece in bot.ask_stream(question, history, mode=mode, k=k, **(filters or {})):
        if isinstance(piece, Answer):
            answer = piece
        else:
            print(piece, end="", flush=True)
    print()
    if answer is not None:
        if answer.notice:
            print(f"({answer.notice})")
        for i, p in enumerate(answer.citations, 1):
            print(f"  [{i}] {p.title} — {p.source} [{p.start}:{p.end}]")
        if answer.leads:
            print("  Pistes : " + " ; ".join(f"{p.title} ({p.source})" for p in answer.leads))
    return answer


def cmd_chat(args: argparse.Namespace, settings: Settings) -> int:
    from .core import Assistant
    from .embed.reader import prepare_reader

    bot = Assistant.load(settings)
    prepare_reader(settings)
    history: list[dict[str, str]] = []
    print("Posez vos questions (Ctrl-D pour quitter).")
    while True:
        try:
            question = input("> ").strip()
        except EOFError:
            print()
            return 0
        if not question:
            continue
        try:
            answer = _print_answer_stream(bot, question, history, args.mode, None)
        except AssistantError as exc:
            print(f"Erreur : {exc}")
            continue
        history += [{"role": "user", "content": question},
                    {"role": "assistant", "content": answer.text if answer else ""}]


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from .evaluation import format_report, run_eval

    report = run_eval(settings, args.file, k=args.k, mode=args.mode, articles=args.articles,
                      as_typed=args.typed)
    if args.json:
        _print_json(report)
    else:
        print(format_report(report))
    return 0


def cmd_add(args: argparse.Namespace, settings: Settings) -> int:
    from .ingest.add import add_items

    report = add_items(settings, args.items, timeout=args.timeout, wait=args.wait,
                       progress=False if args.json else None)
    if args.json:
        _print_json(report.to_dict())
    else:
        print("\n".join(report.lines()))
    return report.exit_status


def cmd_keys(args: argparse.Namespace, settings: Settings) -> int:
    from .errors import ConfigError
    from .keys import KeyFile

    path = args.file or settings.api_keys_file
    if path is None:
        raise ConfigError("Indiquez le fichier de clés : --file FICHIER ou ASSISTANT_API_KEYS.")
    keys = KeyFile(path)
    if args.action == "create":
        key = keys.create(args.name)
        if args.json:
            _print_json({"name": args.name, "key": key, "file": str(keys.path)})
            return 0
        print(key)
        print(f"Clé « {args.name} » ajoutée à {keys.path}. Copiez-la maintenant : elle ne sera "
              "plus affichée (seule son empreinte salée est gardée).", file=sys.stderr)
    elif args.action == "revoke":
        keys.revoke(args.name)
        print(f"Clé « {args.name} » révoquée.", file=sys.stderr)
    else:
        records = keys.records()
        if args.json:
            _print_json([{"name": r.name, "created": r.created, "prefix": r.shown}
                         for r in records])
            return 0
        if not records:
            print(f"Aucune clé dans {keys.path}.", file=sys.stderr)
        for r in records:
            print(f"{r.name:24} {r.created}  {r.shown}")
    return 0


def cmd_feedback(args: argparse.Namespace, settings: Settings) -> int:
    import contextlib
    from pathlib import Path

    from .errors import ConfigError
    from .feedback import FeedbackStore

    path = Path(args.db).expanduser() if args.db else settings.feedback_path
    lines = [json.dumps(line, ensure_ascii=False) + "\n"
             for line in FeedbackStore(path).export(args.only)]
    if args.out is None:
        sys.stdout.writelines(lines)
    else:
        out = Path(args.out)
        partial = out.with_name(f".{out.name}.part")
        try:
            partial.write_text("".join(lines), encoding="utf-8")
            partial.replace(out)
        except OSError as exc:
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)
            raise ConfigError(f"Impossible d'écrire {out} ({exc.strerror or exc}) : choisissez "
                              "un autre fichier avec --out.") from None
    where = "" if args.out is None else f" dans {args.out}"
    print(f"{len(lines)} avis exporté(s){where} (votes : {path}).", file=sys.stderr)
    return 0


def _from_ui(module: str, name: str, package: str) -> Any:
    """`name` of the edge module `ui.<module>`, imported only when a command needs it."""
    import importlib

    try:
        return getattr(importlib.import_module(f"ui.{module}"), name)
    except ImportError as exc:
        from .errors import missing_extra

        raise missing_extra("ui", exc.name or package) from None


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    if settings.api_keys_file is not None:  # a bad keys file: say so before loading anything
        from .keys import KeyFile

        KeyFile(settings.api_keys_file).check()
    _from_ui("app", "serve", "gradio")(settings, watch=args.watch)
    return 0


def cmd_mcp(args: argparse.Namespace, settings: Settings) -> int:
    _from_ui("mcp_server", "run_stdio", "mcp")(settings)
    return 0


COMMANDS = {
    "index": cmd_index, "search": cmd_search, "ask": cmd_ask, "chat": cmd_chat,
    "eval": cmd_eval, "serve": cmd_serve, "add": cmd_add, "keys": cmd_keys,
    "mcp": cmd_mcp, "feedback": cmd_feedback,
}

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
