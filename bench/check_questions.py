"""Check the training questions by rule, before anything is fitted on them.

    python bench/check_questions.py [FILE.jsonl ...] [--articles DIR ...]

Without arguments, every question file of `bench/fit_scorer.py` (`SETS`, read over its article
directories and corpus/) and `bench/data/topic.jsonl`. With files, those, over corpus/, the
neighbouring articles and our own (`bench/data/articles*/`), or the `--articles` directories.

A question drafted in bulk is kept only if what it claims can be checked in the articles:

- every line a JSON object with an `id` (unique across all the files), a `question`, a `kind`
  (`KINDS`) and what it `asks` (`ASKS`);
- an answerable question names its `sources` (articles that exist), and its `answer_pattern`, a
  valid regular expression, matches the cleaned text of one of them (as the index reads it); but
  for a list, the match lies inside one sentence (as the index splits them), since a sentence is
  what the answer cites; its `short` answer, when given, is written in that sentence;
- an unanswerable one (`out_of_scope`) has no sources, pattern or short answer, and says whether
  it is `near` (about an entity the articles know; absent: far); `off_topic` only on far ones;
- the same question is not asked twice (the same words, any case or accents).

Prints one line per problem (file, id, what is wrong) and exits 1 when there is any.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.ingest.corpus import read_article  # noqa: E402
from assistant.text.analysis import fold_accents  # noqa: E402
from assistant.text.sentences import split_sentences  # noqa: E402

DATA = ROOT / "bench" / "data"
NEIGHBOURS = ROOT.parent / "shared" / "eval" / "articles"
KINDS = frozenset({"fact", "paraphrase", "english", "list", "date", "out_of_scope"})
ASKS = frozenset({"person", "name", "number", "money", "area", "date", "place", "list",
                  "other"})


def articles_in(directories: Iterable[Path]) -> dict[str, str]:
    """Article stem -> cleaned text, for every .txt / .md of `directories` (and corpus/)."""
    texts: dict[str, str] = {}
    for directory in [ROOT / "corpus", *directories]:
        for path in sorted(directory.glob("*")):
            if path.suffix in (".txt", ".md"):
                texts[path.stem] = read_article(path, path.name).text
    return texts


def sentence_of(text: str, start: int, end: int) -> str | None:
    """The sentence of `text` holding the span start..end whole, None if it spans two."""
    for a, b in split_sentences(text):
        if a <= start and end <= b:
            return text[a:b]
    return None


def problems(question: dict[str, Any], texts: dict[str, str]) -> list[str]:
    """What is wrong with one question (nothing: an empty list)."""
    out = []
    kind, asks = question.get("kind"), question.get("asks")
    if not str(question.get("question") or "").strip():
        out.append("no question")
    if kind not in KINDS:
        out.append(f"kind {kind!r} not one of {sorted(KINDS)}")
    if asks is not None and asks not in ASKS:
        out.append(f"asks {asks!r} not one of {sorted(ASKS)}")
    sources, pattern = question.get("sources") or [], question.get("answer_pattern")
    short = question.get("short")
    if kind == "out_of_scope":
        if sources or pattern or short:
            out.append("an unanswerable question has no sources, pattern or short answer")
        if not isinstance(question.get("near", False), bool):
            out.append("near is true or false")
        elif question.get("near") and question.get("off_topic"):
            out.append("a near question is not off the topic")
        return out
    if not sources or not pattern:
        return [*out, "an answerable question names its sources and its answer pattern"]
    missing = [s for s in sources if s not in texts]
    if missing:
        return [*out, f"unknown articles {missing}"]
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        return [*out, f"pattern does not compile: {exc}"]
    matches = [(s, m) for s in sources for m in compiled.finditer(texts[s])]
    if not matches:
        return [*out, "pattern not found in its sources"]
    if kind == "list":
        return out
    sentences = [sentence_of(texts[s], m.start(), m.end()) for s, m in matches]
    inside = [s for s in sentences if s is not None]
    if not inside:
        out.append("pattern spans two sentences")
    elif short and not any(short in s for s in inside):
        out.append(f"short answer {short!r} not in the matched sentence")
    return out


def check(files: dict[Path, dict[str, str]]) -> list[str]:
    """Problems of every question of `files` (file -> the articles it is read over), and ids
    or questions seen twice across them."""
    found: list[str] = []
    ids: dict[str, Path] = {}
    asked: dict[str, str] = {}
    for path, texts in files.items():
        for n, line in enumerate(path.read_text("utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                question = json.loads(line)
            except json.JSONDecodeError as exc:
                found.append(f"{path.name}:{n}: not JSON ({exc})")
                continue
            qid = str(question.get("id"))
            if qid in ids:
                found.append(f"{path.name}:{n}: {qid}: id already used in {ids[qid].name}")
            ids[qid] = path
            words = " ".join(re.findall(r"\w+", fold_accents(str(question.get("question",
                                                                             "")).lower())))
            if words in asked and "kind" in question:
                found.append(f"{path.name}:{n}: {qid}: the same question as {asked[words]}")
            asked[words] = qid
            if "off_topic" in question and "kind" not in question:  # topic.jsonl: a label only
                continue
            found += [f"{path.name}:{n}: {qid}: {p}" for p in problems(question, texts)]
    return found


def default_files() -> dict[Path, dict[str, str]]:
    """Each question file of `fit_scorer.SETS` (and topic.jsonl) with its articles."""
    sys.path.insert(0, str(ROOT / "bench"))
    import fit_scorer  # type: ignore[import-not-found]

    files: dict[Path, dict[str, str]] = {}
    for directories, names in fit_scorer.SETS:
        texts = articles_in(directories)
        files.update({(DATA / name).resolve(): texts for name in names})
    files[fit_scorer.TOPIC_FILE] = {}
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--articles", nargs="*", type=Path,
                        default=[NEIGHBOURS, *sorted(DATA.glob("articles*"))])
    args = parser.parse_args()
    if args.files:
        texts = articles_in(args.articles)
        files = {path.resolve(): texts for path in args.files}
    else:
        files = default_files()
    found = check(files)
    print("\n".join(found) if found else
          f"{len(files)} files checked: no problem", file=sys.stderr if found else sys.stdout)
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
