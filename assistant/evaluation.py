"""`assistant eval FILE`: measure retrieval and answers on a JSON-lines question file.

One question per line:

    {"id": "dev01", "question": "Qui dirige ... ?", "sources": ["article-stem"],
     "answer_pattern": "Maadnous", "kind": "fact"}

`kind` is "fact" (the corpus answers it) or "out_of_scope" (the assistant should decline);
`answer_pattern` is a regular expression (or null) that a correct passage / answer contains;
`sources` are article file names without extension (or with it).

Measured per question and in total:
- passage hit@1/3/5 and hit@k: the pattern is found (`re.search`) in one of the first passages;
  MRR over the first k passages; source hit@k: one of the first k passages comes from `sources`;
- answer match: the pattern is in the answer text; citation support: a cited passage contains it;
- refusal accuracy on out-of-scope questions, false refusals on in-scope ones;
- latency p50/p95 of `search` and `ask` (one warm process).
"""

from __future__ import annotations

import importlib.util
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from .config import Settings
from .core import Assistant
from .errors import ConfigError, QuestionError
from .records import Passage

KINDS = ("fact", "out_of_scope")
HIT_CUTS = (1, 3, 5)


@dataclass(frozen=True)
class EvalQuestion:
    id: str
    question: str
    sources: tuple[str, ...]
    pattern: re.Pattern[str] | None
    kind: str

    def matches(self, text: str) -> bool:
        return bool(self.pattern and self.pattern.search(text))

    def from_source(self, source: str) -> bool:
        return source in self.sources or PurePosixPath(source).stem in self.sources


def load_questions(path: str | Path) -> list[EvalQuestion]:
    """Parse and check a question file; ConfigError names the line that is wrong."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ConfigError(
            f"Fichier de questions introuvable : {path} (question file not found)."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"Fichier de questions illisible : {path} ({exc.__class__.__name__}) ; "
            "il doit être en UTF-8, une question JSON par ligne (one JSON object per line)."
        ) from None
    questions: list[EvalQuestion] = []
    seen: set[str] = set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        question = _parse_line(line, path, number)
        if question.id in seen:
            raise _line_error(path, number, f"identifiant « {question.id} » en double "
                                            "(duplicate id)")
        seen.add(question.id)
        questions.append(question)
    if not questions:
        raise ConfigError(f"{path} ne contient aucune question (no question in file).")
    return questions


def _line_error(path: Path, number: int, what: str) -> ConfigError:
    return ConfigError(
        f"{path}, ligne {number} (line {number}) : {what}. Format attendu : "
        '{"id": "q1", "question": "…", "sources": ["article"], "answer_pattern": "regex" ou '
        'null, "kind": "fact" ou "out_of_scope"}'
    )


def _parse_line(line: str, path: Path, number: int) -> EvalQuestion:
    try:
        data = json.loads(line)
    except json.JSONDecodeError as exc:
        raise _line_error(path, number, f"JSON invalide (invalid JSON: {exc.msg})") from None
    if not isinstance(data, dict):
        raise _line_error(path, number, "un objet JSON est attendu (expected a JSON object)")
    missing = [key for key in ("id", "question", "kind") if key not in data]
    if missing:
        raise _line_error(path, number, f"champ(s) manquant(s) (missing): {', '.join(missing)}")
    if not isinstance(data["question"], str) or not data["question"].strip():
        raise _line_error(path, number, "« question » doit être un texte non vide")
    if data["kind"] not in KINDS:
        raise _line_error(path, number, f"« kind » vaut {data['kind']!r}, pas fact/out_of_scope")
    sources = data.get("sources") or []
    if not isinstance(sources, list) or not all(isinstance(s, str) for s in sources):
        raise _line_error(path, number, "« sources » doit être une liste de noms d'articles")
    raw = data.get("answer_pattern")
    pattern = None
    if raw is not None:
        if not isinstance(raw, str) or not raw:
            raise _line_error(path, number, "« answer_pattern » doit être une regex ou null")
        try:
            pattern = re.compile(raw)
        except re.error as exc:
            raise _line_error(path, number, f"regex invalide (invalid regex: {exc})") from None
    return EvalQuestion(str(data["id"]), data["question"], tuple(sources), pattern, data["kind"])


def answers_available() -> bool:
    """False while the answer module is not part of the package (retrieval is still measured)."""
    return importlib.util.find_spec("assistant.answer") is not None


def run_eval(
    settings: Settings, file: str | Path, *, k: int = 5, mode: str | None = None,
    assistant: Assistant | None = None, answers: bool = True,
) -> dict[str, Any]:
    """Evaluate the index of `settings` (or an already loaded `assistant`) on a question file."""
    if k < 1:
        raise ConfigError(f"k={k} : choisissez au moins 1.")
    questions = load_questions(file)
    bot = assistant or Assistant.load(settings)
    do_answers = answers and answers_available()
    depth = max(k, max(HIT_CUTS))
    bot.search("échauffement du modèle", k=1)  # warm-up: first encode is slower
    rows = [_evaluate(bot, q, k=k, depth=depth, mode=mode, answers=do_answers) for q in questions]
    status = bot.status()
    return {
        "file": str(file),
        "k": k,
        "mode": mode or bot.settings.answerer,
        "dense_weight": bot.settings.dense_weight,
        "answers_evaluated": do_answers,
        "index": {key: status[key] for key in ("generation", "articles", "chunks", "faiss_index",
                                               "model")},
        "totals": totals(questions, rows, k=k),
        "questions": rows,
    }


def _evaluate(
    bot: Assistant, q: EvalQuestion, *, k: int, depth: int, mode: str | None, answers: bool
) -> dict[str, Any]:
    row: dict[str, Any] = {"id": q.id, "kind": q.kind, "question": q.question}
    try:
        t0 = time.perf_counter()
        passages = bot.search(q.question, k=depth)
        row["search_ms"] = (time.perf_counter() - t0) * 1000
    except QuestionError as exc:
        return {**row, "error": str(exc), "rank": None, "source_rank": None}
    row.update(score_passages(q, passages, k=k))
    if answers:
        t0 = time.perf_counter()
        answer = bot.ask(q.question, mode=mode)
        row["ask_ms"] = (time.perf_counter() - t0) * 1000
        row["in_corpus"] = answer.in_corpus
        row["citations"] = [p.source for p in answer.citations]
        if q.kind == "fact" and q.pattern is not None:
            row["answer_match"] = q.matches(answer.text)
            row["citation_support"] = any(q.matches(p.text) for p in answer.citations)
    return row


def score_passages(q: EvalQuestion, passages: list[Passage], *, k: int) -> dict[str, Any]:
    """Rank (1-based) of the first passage holding the answer / from a right source."""
    rank = next((i for i, p in enumerate(passages, 1) if q.matches(p.text)), None)
    source_rank = next((i for i, p in enumerate(passages, 1) if q.from_source(p.source)), None)
    return {
        "rank": rank if q.pattern is not None else None,
        "source_rank": source_rank if q.sources else None,
        "top_sources": [PurePosixPath(p.source).stem for p in passages[:k]],
        "context_chars": sum(len(p.text) for p in passages[:k]),
    }


def totals(
    questions: list[EvalQuestion], rows: list[dict[str, Any]], *, k: int
) -> dict[str, Any]:
    """Aggregate metrics; a metric with no question to measure it is None."""
    pairs = list(zip(questions, rows))
    ranked = [r for q, r in pairs if q.kind == "fact" and q.pattern is not None]
    sourced = [r for q, r in pairs if q.kind == "fact" and q.sources]
    facts = sum(1 for q in questions if q.kind == "fact")
    out: dict[str, Any] = {
        "questions": len(rows), "fact": facts, "out_of_scope": len(rows) - facts,
    }
    for cut in HIT_CUTS:
        out[f"hit@{cut}"] = _mean([_within(r.get("rank"), cut) for r in ranked])
    out["hit@k"] = _mean([_within(r.get("rank"), k) for r in ranked])
    out["mrr"] = _mean([1 / r["rank"] if _within(r.get("rank"), k) else 0.0 for r in ranked])
    out["source_hit@k"] = _mean([_within(r.get("source_rank"), k) for r in sourced])
    answered = [(q, r) for q, r in pairs if "in_corpus" in r]
    out["answer_match"] = _mean([r["answer_match"] for _, r in answered if "answer_match" in r])
    out["citation_support"] = _mean(
        [r["citation_support"] for _, r in answered if "citation_support" in r]
    )
    out["refusal_accuracy"] = _mean(
        [not r["in_corpus"] for q, r in answered if q.kind == "out_of_scope"]
    )
    out["false_refusals"] = _mean([not r["in_corpus"] for q, r in answered if q.kind == "fact"])
    out["context_chars@k"] = _mean([r["context_chars"] for r in rows if "context_chars" in r])
    out["errors"] = sum(1 for r in rows if "error" in r)
    for name in ("search", "ask"):
        times = [r[f"{name}_ms"] for r in rows if f"{name}_ms" in r]
        out[f"{name}_ms_p50"] = _percentile(times, 50)
        out[f"{name}_ms_p95"] = _percentile(times, 95)
    return out


def format_report(report: dict[str, Any]) -> str:
    """The human-readable table printed by `assistant eval` (without --json)."""
    k, t, index = report["k"], report["totals"], report["index"]
    lines = [
        f"Évaluation de {report['file']} : {t['questions']} questions ({t['fact']} fact, "
        f"{t['out_of_scope']} out_of_scope), k={k}, dense_weight={report['dense_weight']}, "
        f"index {index['generation']} ({index['articles']} articles, {index['chunks']} passages, "
        f"FAISS {index['faiss_index']})",
        "",
        f"{'id':<12} {'kind':<12} {'rank':>4} {'src':>4} {'answer':>6} {'cited':>6} "
        f"{'refused':>7} {'search ms':>9} {'ask ms':>8}",
    ]
    for r in report["questions"]:
        refused = "in_corpus" in r and not r["in_corpus"]
        lines.append(
            f"{r['id'][:12]:<12} {r['kind']:<12} {_cell(r.get('rank')):>4} "
            f"{_cell(r.get('source_rank')):>4} {_cell(r.get('answer_match')):>6} "
            f"{_cell(r.get('citation_support')):>6} "
            f"{_cell(refused if 'in_corpus' in r else None):>7} "
            f"{_cell(r.get('search_ms')):>9} {_cell(r.get('ask_ms')):>8}"
            + (f"  ERREUR : {r['error']}" if "error" in r else "")
        )
    lines += ["", "Totaux"]
    rows = [
        ("passage hit@1 / @3 / @5", " / ".join(_num(t[f"hit@{c}"]) for c in HIT_CUTS)),
        (f"passage hit@{k}, MRR@{k}", f"{_num(t['hit@k'])}, {_num(t['mrr'])}"),
        (f"source hit@{k}", _num(t["source_hit@k"])),
        ("answer match", _num(t["answer_match"])),
        ("citation support", _num(t["citation_support"])),
        ("refusal accuracy (hors corpus)", _num(t["refusal_accuracy"])),
        ("false refusals (dans le corpus)", _num(t["false_refusals"])),
        ("search ms p50 / p95", f"{_num(t['search_ms_p50'], 1)} / {_num(t['search_ms_p95'], 1)}"),
        ("ask ms p50 / p95", f"{_num(t['ask_ms_p50'], 1)} / {_num(t['ask_ms_p95'], 1)}"),
    ]
    lines += [f"  {name:<34} {value}" for name, value in rows]
    if not report["answers_evaluated"]:
        lines.append("  (réponses non évaluées : module assistant.answer absent)")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "oui" if value else "non"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _within(rank: int | None, cut: int) -> bool:
    return rank is not None and rank <= cut


def _mean(values: list[bool] | list[float]) -> float | None:
    return round(float(np.mean(values)), 4) if values else None


def _percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 2) if values else None
