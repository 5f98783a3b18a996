"""Short answers on our own questions: does the bold fact hold the fact written down for it?

Every question of `bench/data/` whose line gives a `short` (the fact as the article writes it,
checked by hand or by rule when the question was written) and asks a name, a person, a figure,
an amount, an area, a date or a place, with its typed twin, is asked through the real path
(`Assistant.ask`) over the articles it was written for (`fit_scorer.SETS`). Where the answer's
first sentence is the right one, its short answer is right when it holds the written fact, or
the written fact holds it and it is at least half as long ("dix ans" for "pendant dix ans", not
"1.000" for "entre 1.000 et 1.500 emplois"). The dev files measure the same thing with their
patterns (`assistant eval`, `short_match`); this one is larger (about 2,000 answers) and is
what short-answer rules (`text/facts.slot`) are tried on. Nothing here is fitted.

    python bench/short_answers.py [--limit N] [--out DIR] [--failures PATH]
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

from common import OUT, ROOT, md_table, write_results
from fit_scorer import DATA, SETS

from assistant import Assistant, Settings
from assistant.config import E5_MODEL_NAME
from assistant.evaluation import (
    EvalQuestion,
    answer_sentences,
    eval_settings,
    load_question_files,
    typed,
)

KINDS = ("person", "name", "place", "number", "money", "area", "date")
OUTCOMES = ("right", "wrong", "none", "first sentence wrong", "refused")


def normalized(text: str | None) -> str:
    return re.sub(r"[\s\u00a0\u202f]+", " ", text or "").strip(" .,;:«»\"").lower()


def holds(got: str | None, want: str) -> bool:
    """Whether the short answer `got` holds the written fact `want` (see the module's text)."""
    got, want = normalized(got), normalized(want)
    return bool(got) and (want in got or (got in want and len(got) >= 0.5 * len(want)))


def asked(limit: int | None) -> list[tuple[list[Path], dict[str, Any], EvalQuestion, str]]:
    """(article directories, the question's line, the question, the text asked): each question
    of `SETS` that has a written `short`, then its typed twin."""
    out = []
    for directories, names in SETS:
        for name in names:
            path = (DATA / name).resolve()
            lines = {json.loads(line)["id"]: json.loads(line)
                     for line in path.read_text("utf-8").splitlines() if line.strip()}
            for q in load_question_files([path]):
                line = lines[q.id]
                if not q.answerable or not line.get("short") or line.get("asks") not in KINDS:
                    continue
                for text in dict.fromkeys((q.question, typed(q.question))):
                    out.append((directories, line, q, text))
    return out[:limit] if limit else out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=int, default=None, help="first N questions only")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--failures", type=Path, default=None,
                    help="write the wrong and missing short answers here (JSON lines)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    counts: dict[str, Counter[str]] = {kind: Counter() for kind in KINDS}
    failures = []
    bots: dict[tuple[str, ...], Assistant] = {}
    base = Settings.from_env(corpus_dir=ROOT / "corpus", embedding_model=E5_MODEL_NAME)
    for directories, line, q, text in asked(args.limit):
        key = tuple(str(d) for d in directories)
        if key not in bots:
            bots[key] = Assistant.load(eval_settings(base, directories))
        answer = bots[key].ask(text)
        sentences = answer_sentences(answer) if answer.in_corpus else []
        if not answer.in_corpus:
            outcome = "refused"
        elif not sentences or not q.matches(sentences[0]):
            outcome = "first sentence wrong"
        elif holds(answer.short, line["short"]):
            outcome = "right"
        else:
            outcome = "none" if not answer.short else "wrong"
        counts[line["asks"]][outcome] += 1
        if outcome in {"wrong", "none"}:
            failures.append({"id": line["id"], "asks": line["asks"], "question": text,
                             "short": line["short"], "got": answer.short,
                             "sentence": sentences[0]})
    total: Counter[str] = sum(counts.values(), Counter())
    rows = []
    for kind, c in [*counts.items(), ("all", total)]:
        judged = c["right"] + c["wrong"] + c["none"]
        rows.append([kind, judged, *(c[o] for o in OUTCOMES),
                     round(c["right"] / judged, 3) if judged else None])
    table = md_table(["asks", "answers with the right first sentence", *OUTCOMES,
                      "short answer right"], rows, digits=3)
    md = ("### Short answers on our own questions\n\n"
          "`python bench/short_answers.py`: the written fact of each of our questions (and its "
          "typed twin) against the short answer, where the first sentence is right.\n\n"
          + table + "\n")
    data = {"counts": {k: dict(v) for k, v in counts.items()}, "seconds":
            round(time.perf_counter() - t0, 1), "failures": len(failures)}
    write_results("short_answers", data, md, args.out)
    if args.failures:
        args.failures.write_text("".join(json.dumps(f, ensure_ascii=False) + "\n"
                                         for f in failures), "utf-8")
    print(md)


if __name__ == "__main__":
    main()
