"""The `assistant` command and the LangChain adapter, round-trips on real indexes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from assistant import Settings
from assistant.cli import main

from .test_index import NEW_ARTICLE


def _args(settings: Settings) -> list[str]:
    return ["--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir)]


def test_console_script_search_json(seed_settings: Settings) -> None:
    """The installed `assistant` entry point, in a real subprocess: JSON on stdout only."""
    exe = Path(sys.executable).with_name("assistant")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "assistant.cli"]
    out = subprocess.run(
        [*cmd, "search", "Qui dirige la Louvre Lens Vallée ?", "--json", "-k", "5",
         *_args(seed_settings)],
        capture_output=True, text=True, timeout=300, env={**os.environ, "ASSISTANT_K": "2"},
    )
    assert out.returncode == 0, out.stderr
    passages = json.loads(out.stdout)
    assert len(passages) == 5  # the flag beats the environment
    assert set(passages[0]) == {"chunk_id", "score", "text", "source", "title", "start", "end"}
    assert any("Maadnous" in p["text"] or "Balzerani" in p["text"] for p in passages)


def test_one_shot_commands_end_with_their_code_and_whole_output(seed_settings: Settings,
                                                                  tmp_path: Path) -> None:
    """`ask` and `search` end the process without tearing it down (`cli._exit_now`): the
    answer is printed whole, an error keeps its message and exit code."""
    cmd = [sys.executable, "-c", "import sys; from assistant.cli import main; sys.exit(main())"]
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    out = subprocess.run([*cmd, "ask", "Qui dirige la Louvre Lens Vallée ?",
                          *_args(seed_settings)], capture_output=True, text=True, timeout=300,
                         env=env)
    assert out.returncode == 0, out.stderr
    assert "[1]" in out.stdout and out.stdout.rstrip().splitlines()[-1].lstrip().startswith("[")
    missing = subprocess.run([*cmd, "search", "Qui ?", "--index", str(tmp_path / "none")],
                             capture_output=True, text=True, timeout=300, env=env)
    assert missing.returncode == 1 and "Erreur" in missing.stderr and missing.stdout == ""


def test_index_build_update_status_json(
    make_corpus: Callable[..., Settings], capsys: pytest.CaptureFixture[str], monkeypatch: Any,
) -> None:
    settings = make_corpus()
    assert main(["index", "build", "--json", *_args(settings)]) == 0
    built = json.loads(capsys.readouterr().out)
    assert built["added"] == 5 and built["chunks_embedded"] == built["chunks"]

    (settings.corpus_dir / "campus-epinal.md").write_text(NEW_ARTICLE, encoding="utf-8")
    assert main(["index", "update", "--json", *_args(settings)]) == 0
    updated = json.loads(capsys.readouterr().out)
    assert {k: updated[k] for k in ("added", "changed", "removed", "unchanged")} == {
        "added": 1, "changed": 0, "removed": 0, "unchanged": 5}
    assert 0 < updated["chunks_embedded"] < 5

    # Settings from the environment: ASSISTANT_INDEX_DIR / ASSISTANT_CORPUS_DIR.
    monkeypatch.setenv("ASSISTANT_INDEX_DIR", str(settings.index_dir))
    monkeypatch.setenv("ASSISTANT_CORPUS_DIR", str(settings.corpus_dir))
    assert main(["index", "status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["articles"] == 6 and status["model"] == "multilingual-e5-small"
    assert status["chunks"] == built["chunks"] + updated["chunks_embedded"]
    assert status["built_at"]

    assert main(["search", "campus numérique Épinal", "--json"]) == 0
    top = json.loads(capsys.readouterr().out)[0]
    assert top["source"] == "campus-epinal.md"


def test_human_output_and_errors(
    seed_settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["search", "Serre numérique", "-k", "2", *_args(seed_settings)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("[1] ") and "[2] " in out
    assert main(["index", "status", "--index", str(tmp_path / "none")]) == 1
    assert "assistant index build" in capsys.readouterr().err
    assert main(["search", "  ", *_args(seed_settings)]) == 1
    assert "vide" in capsys.readouterr().err


@pytest.mark.parametrize(("env", "line"), [
    ({"ASSISTANT_K": "0"}, "k=0 (ASSISTANT_K) : choisissez au moins 1."),
    ({"ASSISTANT_K": "beaucoup"}, "ASSISTANT_K='beaucoup' : la valeur doit être un nombre entier."),
    ({"ASSISTANT_DENSE_WEIGHT": "0.8", "ASSISTANT_SENTENCE_WEIGHT": "0.5"},
     "dense_weight=0.8 (ASSISTANT_DENSE_WEIGHT) + sentence_weight=0.5 "
     "(ASSISTANT_SENTENCE_WEIGHT) : leur somme ne doit pas dépasser 1 (BM25 reçoit le reste)."),
    ({"ASSISTANT_ARTICLE_WEIGHT": "-1"},
     "article_weight=-1.0 (ASSISTANT_ARTICLE_WEIGHT) : choisissez entre 0 et 10."),
    ({"ASSISTANT_STORE": "qdrant"}, "store='qdrant' (ASSISTANT_STORE) : indiquez aussi "
     "qdrant_url (ASSISTANT_QDRANT_URL) ou qdrant_path (ASSISTANT_QDRANT_PATH)."),
    ({"ASSISTANT_UPLOAD_ENABLED": "peut-être"}, "ASSISTANT_UPLOAD_ENABLED='peut-être' : la "
     "valeur doit être oui ou non (1, true, oui ; 0, false, non)."),
])
def test_bad_settings_are_one_french_line(
    env: dict[str, str], line: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bad `ASSISTANT_*` value: exit 1 and one line in French naming the variable."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert main(["index", "status", "--index", str(tmp_path / "index")]) == 1
    assert capsys.readouterr().err == f"Erreur : {line}\n"


def test_langchain_retriever_round_trip(seed_assistant: Any) -> None:
    from langchain_core.retrievers import BaseRetriever

    from assistant.langchain import AssistantRetriever

    retriever = AssistantRetriever(assistant=seed_assistant, k=3)
    assert isinstance(retriever, BaseRetriever)
    docs = retriever.invoke("Combien d'emplois représente le numérique sur le Sillon Lorrain ?")
    assert len(docs) == 3
    passages = seed_assistant.search(
        "Combien d'emplois représente le numérique sur le Sillon Lorrain ?", k=3)
    for doc, passage in zip(docs, passages):
        assert doc.page_content == passage.text
        assert doc.metadata["source"] == passage.source
        assert doc.metadata["title"] == passage.title
        assert (doc.metadata["start"], doc.metadata["end"]) == (passage.start, passage.end)
