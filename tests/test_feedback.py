"""Votes on answers: the SQLite store, its place beside the index, `assistant feedback export`."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from assistant import ConfigError, Settings
from assistant.feedback import Citation, Feedback, FeedbackStore
from assistant.index.builder import build
from assistant.index.generations import current_generation

QUESTION = "Qui dirige la Louvre Lens Vallée depuis mai 2015 ?"
DEV_KEYS = {"id", "question", "sources", "answer_pattern", "kind"}


def vote(vote: str = "down", **changes: Any) -> Feedback:
    values: dict[str, Any] = dict(
        question=QUESTION, answer="Wafâa Maadnous dirige la LLV. [1]", vote=vote,
        citations=(Citation("louvre-lens-vallee-cluster-numerique.txt", 2060, 2432),
                   Citation("sous/dossier/autre.md", 0, 10),
                   Citation("louvre-lens-vallee-cluster-numerique.txt", 10, 20)),
        mode="extractive", model="multilingual-e5-small", generation="g1",
    )
    values.update(changes)
    return Feedback(**values)


def assistant_command() -> list[str]:
    exe = Path(sys.executable).with_name("assistant")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "assistant.cli"]


def test_record_update_delete_and_entries(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "votes" / "feedback.sqlite")
    assert store.entries() == [] and not store.path.exists()  # reading creates nothing
    first = store.record(vote("down"))
    second = store.record(vote("up", question="Autre question ?"))
    store.update(first, comment="Il manque le prénom <b>complet</b>.")
    entries = store.entries()
    assert [(e.id, e.vote) for e in entries] == [(first, "down"), (second, "up")]
    assert entries[0].comment == "Il manque le prénom <b>complet</b>."
    assert entries[0].citations == vote().citations
    assert entries[0].created_at.endswith("Z") and entries[0].generation == "g1"
    assert [e.id for e in store.entries("up")] == [second]

    store.update(first, vote="up")  # a changed mind keeps the comment
    assert [e.id for e in store.entries("up")] == [first, second]
    store.delete(second)
    assert [e.id for e in store.entries()] == [first]
    with pytest.raises(KeyError):
        store.update(999, comment="x")
    with pytest.raises(ValueError):
        vote("bof")
    with sqlite3.connect(store.path) as db:  # plain SQLite, citations as JSON
        raw = db.execute("SELECT citations, vote FROM feedback").fetchone()
    assert json.loads(raw[0])[0] == {"source": "louvre-lens-vallee-cluster-numerique.txt",
                                     "start": 2060, "end": 2432}
    assert raw[1] == "up"


def test_export_lines_follow_the_dev_set_format(tmp_path: Path) -> None:
    store = FeedbackStore(tmp_path / "feedback.sqlite")
    down = store.record(vote("down", comment="Faux."))
    up = store.record(vote("up"))
    declined = store.record(vote("up", in_corpus=False, citations=()))
    lines = {line["id"]: line for line in store.export()}
    assert list(lines) == [f"feedback-{down}", f"feedback-{up}", f"feedback-{declined}"]
    for line in lines.values():
        assert DEV_KEYS <= set(line) and line["kind"] == "feedback"
        assert line["answer_pattern"] is None and line["question"] == QUESTION
    stems = ["louvre-lens-vallee-cluster-numerique", "autre"]
    # Only an up vote on an answer says where the answer is; the cited articles are kept apart.
    assert lines[f"feedback-{up}"]["sources"] == stems
    assert lines[f"feedback-{down}"]["sources"] == []
    assert lines[f"feedback-{down}"]["cited_sources"] == stems
    assert lines[f"feedback-{down}"]["comment"] == "Faux." and lines[f"feedback-{down}"]["vote"]
    assert lines[f"feedback-{declined}"]["sources"] == []
    assert [line["id"] for line in store.export("down")] == [f"feedback-{down}"]


def test_votes_live_beside_the_index_and_survive_rebuilds(
    make_corpus: Callable[..., Settings], embedder: Any,
) -> None:
    settings = make_corpus()
    assert settings.feedback_path == settings.index_dir / "feedback.sqlite"
    build(settings, lambda: embedder, progress=False)
    store = FeedbackStore(settings.feedback_path)
    store.record(vote("down", generation=current_generation(settings.index_dir).name))
    first = current_generation(settings.index_dir)
    build(settings, lambda: embedder, progress=False)  # a new generation; the old one goes
    assert current_generation(settings.index_dir) != first
    assert not settings.feedback_path.is_relative_to(settings.index_dir / "generations")
    assert [e.question for e in store.entries()] == [QUESTION]


def test_feedback_db_setting_from_the_environment(tmp_path: Path) -> None:
    settings = Settings.from_env({"ASSISTANT_FEEDBACK_DB": str(tmp_path / "avis.sqlite")})
    assert settings.feedback_path == tmp_path / "avis.sqlite"


def test_cli_export(tmp_path: Path) -> None:
    """`assistant feedback export`, the installed command in a subprocess."""
    store = FeedbackStore(tmp_path / "index" / "feedback.sqlite")
    store.record(vote("down", comment="La réponse ne donne pas le nom."))
    store.record(vote("up"))
    out = tmp_path / "avis.jsonl"
    run = subprocess.run(
        [*assistant_command(), "feedback", "export", "--only", "down", "--out", str(out)],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "ASSISTANT_INDEX_DIR": str(tmp_path / "index")},
    )
    assert run.returncode == 0, run.stderr
    assert "1 avis exporté(s)" in run.stderr
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 1 and lines[0]["comment"] == "La réponse ne donne pas le nom."
    assert DEV_KEYS <= set(lines[0]) and lines[0]["vote"] == "down"

    to_stdout = subprocess.run(
        [*assistant_command(), "feedback", "export", "--db", str(store.path)],
        capture_output=True, text=True, timeout=120,
    )
    assert to_stdout.returncode == 0, to_stdout.stderr
    assert [json.loads(line)["vote"] for line in to_stdout.stdout.splitlines()] == ["down", "up"]

    missing = subprocess.run(
        [*assistant_command(), "feedback", "export", "--db", str(tmp_path / "rien.sqlite")],
        capture_output=True, text=True, timeout=120,
    )
    assert missing.returncode == 0 and missing.stdout == ""
    assert not (tmp_path / "rien.sqlite").exists()


def test_cli_export_of_a_bad_votes_file_is_one_french_line(tmp_path: Path) -> None:
    """A votes file that is a directory, not SQLite, or another database, and an --out that
    cannot be written: one French line, exit 1, no traceback, nothing half-written."""
    folder = tmp_path / "dossier.sqlite"
    folder.mkdir()
    garbage = tmp_path / "illisible.sqlite"
    garbage.write_bytes(b"ceci n'est pas une base SQLite\n" * 64)
    other = tmp_path / "autre.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE autre (x)")
    runs = [(db, subprocess.run([*assistant_command(), "feedback", "export", "--db", str(db)],
                                capture_output=True, text=True, timeout=120))
            for db in (folder, garbage)]
    runs.append((other, subprocess.run(  # the setting, not the flag
        [*assistant_command(), "feedback", "export"], capture_output=True, text=True,
        timeout=120, env={**os.environ, "ASSISTANT_FEEDBACK_DB": str(other)})))
    for db, run in runs:
        assert run.returncode == 1 and run.stdout == "", run.stderr
        assert run.stderr.startswith(f"Erreur : Fichier de votes inutilisable : {db} ("), run.stderr
        assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    with pytest.raises(ConfigError, match="c'est un dossier"):  # what the web chat logs
        FeedbackStore(folder).record(vote())

    store = FeedbackStore(tmp_path / "votes.sqlite")
    store.record(vote())
    for out in (tmp_path / "sortie", tmp_path / "absent" / "avis.jsonl"):
        (tmp_path / "sortie").mkdir(exist_ok=True)
        run = subprocess.run([*assistant_command(), "feedback", "export", "--db", str(store.path),
                              "--out", str(out)], capture_output=True, text=True, timeout=120)
        assert run.returncode == 1 and run.stderr.startswith(f"Erreur : Impossible d'écrire {out}")
        assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    assert not list(tmp_path.glob(".*.part"))
