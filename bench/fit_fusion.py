"""Fit the search fusion (`assistant/search/fusion.py`) on our own questions.

    python bench/fit_fusion.py            # -> assistant/data/fusion.json (then fit_scorer.py)

For every answerable question of `fit_scorer.SETS` (and its typed twin), over the articles it
was written for: the candidate chunks of the real search (`HybridRetriever.candidate_signals`)
with their signals, a chunk being right when it comes from the question's article and holds the
answer's pattern. A conditional logit learns how to add the signals up. Reported: passage hit@1
and hit@5 of the settings' weights and of the fit, in sample and cross-validated by article
(5 folds, the scorer's). Run `bench/fit_scorer.py` after it: the pick head reads the passages'
rank and score.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fit_scorer import DATA, FOLDS, ROOT, SETS, fold_of, questions  # noqa: E402

from assistant import Assistant, Settings  # noqa: E402
from assistant.config import E5_MODEL_NAME  # noqa: E402
from assistant.evaluation import eval_settings  # noqa: E402
from assistant.search.fusion import FUSION_FEATURES, Fusion  # noqa: E402
from assistant.text.reading import Question  # noqa: E402

OUT = ROOT / "assistant" / "data" / "fusion.json"
L2 = 1.0


class Row:
    """One question's candidates: their signals, which are right, the weights' scores."""

    def __init__(self, group: str, ids: np.ndarray, signals: dict[str, np.ndarray],
                 right: np.ndarray, weighted: np.ndarray) -> None:
        self.group, self.ids, self.right, self.weighted = group, ids, right, weighted
        self.x = np.column_stack([signals[f] for f in FUSION_FEATURES])

    def hits(self, scores: np.ndarray, cut: int) -> bool:
        order = np.lexsort((self.ids, -scores))[:cut]  # as `HybridRetriever.score`
        return bool(self.right[order].any())


def describe() -> list[Row]:
    base = Settings.from_env(corpus_dir=ROOT / "corpus", embedding_model=E5_MODEL_NAME,
                             fusion="weights")
    rows = []
    for articles, names in SETS:
        bot = Assistant.load(eval_settings(base, articles))
        retriever = bot.retriever
        for q, _, _ in questions([DATA / n for n in names]):
            if not q.answerable or q.pattern is None:
                continue
            asked = retriever.spelled(Question.read(q.question))
            found = retriever.candidate_signals(asked, bot.settings.k)
            if found is None:
                continue
            ids, signals = found
            chunks = retriever.index.db.chunks_by_id(int(c) for c in ids)
            right = np.array([q.matches(chunks[int(c)][0]) and q.from_source(chunks[int(c)][1])
                              for c in ids])
            weighted = retriever.weighted(asked, signals)
            rows.append(Row(q.sources[0], ids, signals, right, weighted))
    return rows


def measure(rows: list[Row], scores: list[np.ndarray]) -> dict[str, float]:
    return {f"hit@{cut}": round(float(np.mean([r.hits(s, cut) for r, s in zip(rows, scores)])),
                                4) for cut in (1, 5)}


def cross_validated(rows: list[Row]) -> dict[str, float]:
    fold = fold_of([r.group for r in rows])
    scores: list[np.ndarray] = [np.zeros(0)] * len(rows)
    for k in range(FOLDS):
        fusion = Fusion.fit([(r.x, r.right.astype(float)) for r in rows if fold[r.group] != k],
                            l2=L2)
        for i, r in enumerate(rows):
            if fold[r.group] == k:
                scores[i] = fusion.scores(dict(zip(FUSION_FEATURES, r.x.T)))
    return measure(rows, scores)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    t0 = time.perf_counter()
    rows = describe()
    print(f"{len(rows)} questions described in {time.perf_counter() - t0:.1f} s", flush=True)
    fusion = Fusion.fit([(r.x, r.right.astype(float)) for r in rows], l2=L2)
    about: dict[str, Any] = {
        "procedure": "bench/fit_fusion.py: conditional logit (L-BFGS, L2 "
                     f"{L2:g}) over each question's candidate chunks; right = from the "
                     "question's article and holding its answer's pattern",
        "fitted_on": "the answerable questions of bench/fit_scorer.py's training files and "
                     "their typed twins",
        "date": time.strftime("%Y-%m-%d"),
        "questions": len(rows),
        "weights": measure(rows, [r.weighted for r in rows]),
        "training": measure(rows, [fusion.scores(dict(zip(FUSION_FEATURES, r.x.T)))
                                   for r in rows]),
        "cross_validated_by_article": cross_validated(rows),
    }
    print(json.dumps(about, indent=1), flush=True)
    fits = {E5_MODEL_NAME: {**fusion.to_dict(), "about": about}}
    args.out.write_text(json.dumps({"models": fits}, indent=1, ensure_ascii=False) + "\n",
                        encoding="utf-8")
    print(f"{time.perf_counter() - t0:.1f} s -> {args.out}")


if __name__ == "__main__":
    main()
