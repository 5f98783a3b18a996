"""`assistant eval FILE [FILE...] [--articles DIR]`: measure retrieval and answers on JSON-lines
question files, over the corpus or over the corpus plus extra article directories.

One question per line:

    {"id": "dev01", "question": "Qui dirige ... ?", "sources": ["article-stem"],
     "answer_pattern": "Maadnous", "kind": "fact"}

`kind` is "out_of_scope" (the assistant should decline) or any other word naming a kind of
answerable question ("fact", "paraphrase", "english", "list"...); totals are given per kind too;
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

import hashlib
import importlib.util
import json
import re
import shutil
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from .config import Settings
from .core import Assistant
from .embed.base import embedding_identity
from .errors import ConfigError, IndexCorruptError, IndexMismatchError, QuestionError
from .ingest.corpus import CorpusFile, scan_corpus
from .records import CITATION_MARK, Answer, Passage
from .text.kinds import question_kind

OUT_OF_SCOPE = "out_of_scope"
HIT_CUTS = (1, 3, 5)


@dataclass(frozen=True)
class EvalQuestion:
    id: str
    question: str
    sources: tuple[str, ...]
    pattern: re.Pattern[str] | None
    kind: str
    near: bool | None = None  # an unanswerable question about an entity the corpus knows

    def matches(self, text: str) -> bool:
        return bool(self.pattern and self.pattern.search(text))

    @property
    def answerable(self) -> bool:
        return self.kind != OUT_OF_SCOPE

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
        'null, "kind": "fact", "paraphrase"… ou "out_of_scope"}'
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
    if not isinstance(data["kind"], str) or not re.fullmatch(r"[a-z_]{1,40}", data["kind"]):
        raise _line_error(path, number, f"« kind » vaut {data['kind']!r} : un mot en minuscules "
                                        "(fact, paraphrase, english, list, out_of_scope…)")
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
    near = data.get("near")
    return EvalQuestion(str(data["id"]), data["question"], tuple(sources), pattern, data["kind"],
                        near if isinstance(near, bool) else None)


def answers_available() -> bool:
    """False while the answer module is not part of the package (retrieval is still measured)."""
    return importlib.util.find_spec("assistant.answer") is not None


def load_question_files(paths: Sequence[str | Path]) -> list[EvalQuestion]:
    """The questions of several files, in order; an id used twice is an error."""
    questions: list[EvalQuestion] = []
    seen: dict[str, Path] = {}
    for path in paths:
        for q in load_questions(path):
            if q.id in seen:
                raise ConfigError(f"Identifiant « {q.id} » présent dans {seen[q.id]} et {path} "
                                  "(duplicate id across files).")
            seen[q.id] = Path(path)
            questions.append(q)
    return questions


def eval_settings(settings: Settings, articles: Sequence[str | Path]) -> Settings:
    """Settings of an index over the corpus plus `articles` directories, kept up to date in the
    user cache (built on first use, then updated incrementally: a rerun costs nothing)."""
    from .index.builder import build, update

    dirs = [settings.corpus_dir, *(Path(d) for d in articles)]
    for d in dirs:
        if not Path(d).is_dir():
            raise ConfigError(f"Dossier d'articles introuvable : {d}. Vérifiez le chemin "
                              "(--articles DIR, ou ASSISTANT_CORPUS_DIR pour le corpus).")
    digest = hashlib.sha256(
        "\n".join(str(Path(d).resolve()) for d in dirs).encode()
        + repr(embedding_identity(settings)).encode()
    ).hexdigest()[:16]
    root = settings.model_cache_dir.parent / "eval" / digest
    corpus = root / "corpus"
    wanted: dict[str, CorpusFile] = {}  # relative path -> file; the first directory wins
    for d in dirs:
        for f in scan_corpus(Path(d)):  # subfolders too, as `assistant index` reads a corpus
            wanted.setdefault(f.source, f)
    corpus.mkdir(parents=True, exist_ok=True)
    for old in scan_corpus(corpus):
        if old.source not in wanted:
            old.path.unlink()
    for source, f in wanted.items():
        target = corpus / source
        if not target.exists() or target.stat().st_mtime_ns != f.mtime_ns:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f.path, target)
    eval_settings = settings.replace(corpus_dir=corpus, index_dir=root / "index")
    try:
        update(eval_settings, progress=False)
    except (IndexMismatchError, IndexCorruptError):  # this index is ours: rebuild it
        build(eval_settings, progress=False)
    return eval_settings


def typed(question: str) -> str:
    """The question as people often type it in a chat: lower case, no accents, no question
    mark, straight apostrophes (what ../shared/eval/typed.py writes)."""
    s = unicodedata.normalize("NFD", question.lower())
    s = "".join(c for c in s if unicodedata.category(c) != "Mn")
    return " ".join(s.replace("?", " ").replace("\u2019", "'").split())


def typed_twins(questions: Sequence[EvalQuestion]) -> list[EvalQuestion]:
    """Each question as typed (`typed`), its id ending with "-typed"."""
    return [replace(q, id=f"{q.id}-typed", question=typed(q.question)) for q in questions]


def run_eval(
    settings: Settings, files: str | Path | Sequence[str | Path], *, k: int = 5,
    mode: str | None = None, assistant: Assistant | None = None, answers: bool = True,
    articles: Sequence[str | Path] = (), as_typed: bool = False,
) -> dict[str, Any]:
    """Evaluate the index of `settings` (or an already loaded `assistant`) on question files;
    with `articles`, over an index of the corpus plus those directories (see `eval_settings`);
    with `as_typed`, on the questions as people type them (`typed`)."""
    if k < 1:
        raise ConfigError(f"k={k} : choisissez au moins 1.")
    paths = [files] if isinstance(files, str | Path) else list(files)
    questions = load_question_files(paths)
    if as_typed:
        questions = typed_twins(questions)
    if articles:
        if assistant is not None:
            raise ConfigError("run_eval: give `articles` or an `assistant`, not both")
        settings = eval_settings(settings, articles)
    bot = assistant or Assistant.load(settings)
    do_answers = answers and answers_available()
    depth = max(k, max(HIT_CUTS))
    bot.search("échauffement du modèle", k=1)  # warm-up: first encode is slower
    rows = [_evaluate(bot, q, k=k, depth=depth, mode=mode, answers=do_answers) for q in questions]
    status = bot.status()
    return {
        "file": ", ".join(str(p) for p in paths),
        "articles": [str(a) for a in articles],
        "k": k,
        "mode": mode or bot.settings.answerer,
        "dense_weight": bot.settings.dense_weight,
        "sentence_weight": bot.settings.sentence_weight,
        "answers_evaluated": do_answers,
        "index": {key: status[key] for key in ("generation", "articles", "chunks", "faiss_index",
                                               "model")},
        "totals": totals(questions, rows, k=k),
        "by_kind": {kind: totals([q for q in questions if q.kind == kind],
                                 [r for q, r in zip(questions, rows) if q.kind == kind], k=k)
                    for kind in dict.fromkeys(q.kind for q in questions)},
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
        row["short_answer"] = answer.short
        if answer.in_corpus:
            row["sentences"] = len(answer_sentences(answer))
        if not q.answerable and q.near is not None:
            row["near"] = q.near
        if q.answerable and q.pattern is not None:
            row["answer_match"] = q.matches(answer.text)
            row["citation_support"] = any(q.matches(p.text) for p in answer.citations)
            sentences = answer_sentences(answer) if answer.in_corpus else []
            row["first_match"] = bool(sentences) and q.matches(sentences[0])
            if question_kind(q.question) in SHORT_KINDS:
                row["short_match"] = bool(answer.short) and q.matches(answer.short or "")
    return row


#: Kinds of question whose answer leads with a short fact (a name, a person, a figure, an
#: amount, an area, a date, a place): where `short_match` is measured.
SHORT_KINDS = frozenset({"person", "name", "number", "money", "area", "date", "place"})


def answer_sentences(answer: Answer) -> list[str]:
    """The cited sentences of an answer, the short answer's line left out: each piece of text
    up to and including its citation marker."""
    body = answer.text
    if answer.short and body.startswith("**"):
        body = body.split("\n", 1)[1] if "\n" in body else ""
    out, start = [], 0
    for m in CITATION_MARK.finditer(body):
        piece = body[start:m.end()].strip(" \n-")
        if piece and not CITATION_MARK.fullmatch(piece):
            out.append(piece)
        start = m.end()
    return out


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
    ranked = [r for q, r in pairs if q.answerable and q.pattern is not None]
    sourced = [r for q, r in pairs if q.answerable and q.sources]
    answerable = sum(1 for q in questions if q.answerable)
    out: dict[str, Any] = {
        "questions": len(rows), "answerable": answerable,
        "out_of_scope": len(rows) - answerable,
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
        [not r["in_corpus"] for q, r in answered if not q.answerable]
    )
    out["false_refusals"] = _mean([not r["in_corpus"] for q, r in answered if q.answerable])
    out["refused_out_of_scope"] = sum(1 for q, r in answered if not q.answerable
                                      and not r["in_corpus"])
    out["refused_answerable"] = sum(1 for q, r in answered if q.answerable and not r["in_corpus"])
    out["refused_near"] = sum(1 for q, r in answered if not q.answerable and q.near is True
                              and not r["in_corpus"])
    out["near"] = sum(1 for q, r in answered if not q.answerable and q.near is True)
    out["refused_far"] = out["refused_out_of_scope"] - out["refused_near"]
    out["far"] = out["out_of_scope"] - out["near"]
    out["first_sentence_match"] = _mean([r["first_match"] for r in rows if "first_match" in r])
    out["short_match"] = _mean([r["short_match"] for r in rows if "short_match" in r])
    out["sentences_per_answer"] = _mean([float(r["sentences"]) for q, r in pairs
                                         if q.answerable and "sentences" in r])
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
        f"Évaluation de {report['file']} : {t['questions']} questions ({t['answerable']} "
        f"answerable, {t['out_of_scope']} out_of_scope), k={k}, "
        f"dense_weight={report['dense_weight']}, sentence_weight={report['sentence_weight']}, "
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
        ("first sentence states the fact", _num(t["first_sentence_match"])),
        ("short answer holds the fact", _num(t["short_match"])),
        ("sentences per answer", _num(t["sentences_per_answer"], 2)),
        ("refusal accuracy (hors corpus)", _num(t["refusal_accuracy"])),
        ("refused: near / far out of scope", f"{t['refused_near']}/{t['near']} / "
                                             f"{t['refused_far']}/{t['far']}"),
        ("false refusals (dans le corpus)", _num(t["false_refusals"])),
        ("search ms p50 / p95", f"{_num(t['search_ms_p50'], 1)} / {_num(t['search_ms_p95'], 1)}"),
        ("ask ms p50 / p95", f"{_num(t['ask_ms_p50'], 1)} / {_num(t['ask_ms_p95'], 1)}"),
    ]
    lines += [f"  {name:<34} {value}" for name, value in rows]
    lines += ["", "Par type de question (by kind)",
              f"  {'kind':<14} {'n':>3} {'hit@1':>6} {'hit@5':>6} {'MRR':>6} {'answer':>7} "
              f"{'cited':>6} {'refused':>8}"]
    for kind, kt in report["by_kind"].items():
        refused = kt["refused_out_of_scope"] + kt["refused_answerable"]
        lines.append(
            f"  {kind:<14} {kt['questions']:>3} {_num(kt['hit@1'], 2):>6} "
            f"{_num(kt['hit@5'], 2):>6} {_num(kt['mrr'], 2):>6} {_num(kt['answer_match'], 2):>7} "
            f"{_num(kt['citation_support'], 2):>6} {refused:>4}/{kt['questions']:<3}"
        )
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
