"""Fit the in/out-of-corpus decision and write `assistant/data/decision.json`.

    python bench/fit_decision.py [--max-false N]

For every question of `SETS` (the dev files of ../shared/eval, our own held-out and near-domain
files in tests/data), over the seed corpus and over the corpus plus neighbouring articles, the
real code path gathers the evidence (`ExtractiveAnswerer.evidence`: search, candidate sentences,
coverage, semantic, focus, english, attribute, paraphrase, absent names). Questions that name
something absent from the articles of their best candidate sentences are refused by rule and
left out of the fit. A logistic regression (numpy, L2, standardised features, weights of all but
english kept >= 0) is fitted with label "answerable"; the threshold is the highest cut, halfway
between two training points, that refuses at most `--max-false` answerable training questions,
so that answerable questions are almost never refused. The file records the procedure, the
training counts and a 5-fold cross-validated estimate (each fold fitted and thresholded on the
other four), which is what the README reports. Re-run it after any change to retrieval,
sentence ranking or the model.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant import Assistant, Settings  # noqa: E402
from assistant.answer.decision import ANY_MODEL, FEATURES, MONOTONE, Evidence, Model  # noqa: E402
from assistant.answer.extractive import ExtractiveAnswerer  # noqa: E402
from assistant.config import E5_MODEL_NAME, PACKAGED_MODEL  # noqa: E402
from assistant.evaluation import eval_settings, load_question_files  # noqa: E402
from assistant.text.question import Terms  # noqa: E402

EVAL = ROOT.parent / "shared" / "eval"
DATA = ROOT / "tests" / "data"
#: (extra article directories, question files): each set is measured over the corpus plus those
#: directories. The seed corpus alone, where many places and facts are absent, and the bigger
#: corpus with neighbouring articles, where the absent facts are about present entities.
SETS = [
    ([], [EVAL / "dev_questions.jsonl", DATA / "near_domain_seed.jsonl"]),
    ([EVAL / "articles"], [EVAL / "dev_questions.jsonl", EVAL / "dev_questions_hard.jsonl",
                           EVAL / "dev_questions_distractors.jsonl",
                           DATA / "heldout_questions.jsonl"]),
]
OUT = ROOT / "assistant" / "data" / "decision.json"
L2 = 1.0


def evidence(bot: Assistant, questions: list) -> tuple[list[Evidence], np.ndarray]:
    answerer = ExtractiveAnswerer(bot.settings)
    retriever = bot.retriever
    found, labels = [], []
    for q in questions:
        passages = retriever.search(q.question, bot.settings.k)
        terms = Terms.of(q.question, retriever, entity_boost=0.5, absent_discount=1.0)
        pool = answerer.ranked(q.question, q.question, passages, retriever, terms)
        found.append(answerer.evidence(q.question, passages, retriever, pool) if passages
                     else Evidence(0.0, 0.0, 0.0, 0.0, absent_names=("?",)))
        labels.append(1.0 if q.answerable else 0.0)
    return found, np.asarray(labels)


def fit(found: list[Evidence], y: np.ndarray, max_false: int, about: dict,
        without: tuple[str, ...] = ()) -> Model:
    """The model fitted on the questions the name rule does not refuse (the features named in
    `without` keep a zero weight)."""
    kept = np.array([not e.absent_names for e in found])
    x = np.array([e.vector() for e in found], dtype=np.float64)[kept]
    y_fit = y[kept]
    mean, scale = x.mean(0), x.std(0) + 1e-9
    z = (x - mean) / scale
    monotone = np.array([f in MONOTONE for f in FEATURES])
    unused = np.array([f in without for f in FEATURES])
    w, b = np.zeros(z.shape[1]), 0.0
    for _ in range(5000):  # projected gradient descent: 6 features, ~150 rows
        p = 1 / (1 + np.exp(-(z @ w + b)))
        w -= 0.1 * (z.T @ (p - y_fit) / len(y_fit) + L2 * w / len(y_fit))
        b -= 0.1 * float((p - y_fit).mean())
        w[monotone] = np.maximum(w[monotone], 0.0)
        w[unused] = 0.0
    p = np.zeros(len(y))
    p[kept] = 1 / (1 + np.exp(-(z @ w + b)))
    threshold = 0.0
    values = np.unique(p[kept])
    for t in (values[1:] + values[:-1]) / 2:  # cuts halfway between two training points
        if ((p < t) & (y == 1)).sum() <= max_false:
            threshold = float(t)
    return Model(tuple(mean.round(6)), tuple(scale.round(6)), tuple(w.round(6)),
                 round(b, 6), round(threshold, 4), about)


def refusals(model: Model, found: list[Evidence], y: np.ndarray) -> dict[str, int]:
    refused = np.array([not model.in_corpus(e) for e in found])
    return {"out_of_scope": int((y == 0).sum()),
            "out_of_scope_refused": int((refused & (y == 0)).sum()),
            "answerable": int((y == 1).sum()),
            "answerable_refused": int((refused & (y == 1)).sum())}


def cross_validated(found: list[Evidence], y: np.ndarray, max_false: int,
                    without: tuple[str, ...] = (), folds: int = 5) -> dict:
    order = np.random.default_rng(0).permutation(len(y))
    totals = {"out_of_scope": 0, "out_of_scope_refused": 0, "answerable": 0,
              "answerable_refused": 0}
    for k in range(folds):
        test = order[k::folds]
        train = np.setdiff1d(order, test)
        # the training share of the false-refusal budget
        budget = max(0, round(max_false * len(train) / len(y)))
        model = fit([found[i] for i in train], y[train], budget, {}, without)
        for key, value in refusals(model, [found[i] for i in test], y[test]).items():
            totals[key] += value
    return totals


def fitted(model_name: str, max_false: int, without: tuple[str, ...] = ()) -> Model:
    """The decision for one embedding model, with its procedure and measured results."""
    found: list[Evidence] = []
    labels: list[np.ndarray] = []
    described = []
    for articles, files in SETS:
        files = [p for p in files if p.exists()]
        base = Settings.from_env(corpus_dir=ROOT / "corpus", embedding_model=model_name)
        settings = eval_settings(base, articles)
        more, y = evidence(Assistant.load(settings), load_question_files(files))
        found += more
        labels.append(y)
        described.append({"corpus": "corpus/" + "".join(f" + {a.name}/" for a in articles),
                          "questions": [p.name for p in files], "count": len(y)})
    y = np.concatenate(labels)
    about = {
        "procedure": "bench/fit_decision.py: questions naming something that no article of "
                     "their best candidate sentences mentions are refused by rule; on the others, "
                     "logistic regression (L2, "
                     "standardised features, weights of all but english >= 0"
                     + (f", {', '.join(without)} unused" if without else "")
                     + f"), threshold = highest cut refusing at most {max_false} answerable "
                     "training questions",
        "fitted_on": described,
        "embedding_model": model_name,
        "date": time.strftime("%Y-%m-%d"),
        "questions": len(y),
    }
    model = fit(found, y, max_false, about, without)
    about["training"] = refusals(model, found, y)
    about["cross_validated_5fold"] = cross_validated(found, y, max_false, without)
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-false", type=int, default=2,
                        help="answerable training questions the threshold may refuse")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    t0 = time.perf_counter()
    models = {name: fitted(name, args.max_false) for name in (E5_MODEL_NAME, PACKAGED_MODEL)}
    # Any other embedding model: its cosines are on an unknown scale, so no semantic evidence
    # (fitted on the default model's other evidence).
    models[ANY_MODEL] = fitted(E5_MODEL_NAME, args.max_false, without=("semantic",))
    data = {"models": {name: m.to_dict() for name, m in models.items()}}
    args.out.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for name, m in models.items():
        print(name, json.dumps({k: m.about[k] for k in ("training", "cross_validated_5fold")}))
    print(f"{time.perf_counter() - t0:.1f} s -> {args.out}")


if __name__ == "__main__":
    main()
