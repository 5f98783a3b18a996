"""Fit the (question, sentence) scorer and write `assistant/data/scorer.json`.

    python bench/fit_scorer.py [--max-false-share 0.02] [--out PATH] [--report PATH]

Training data is ours only: the question files of `bench/data/` (written over our own articles,
`bench/data/articles/` and `articles_d/`, and over the articles of `corpus/` and
../shared/eval/articles, without reading the evaluation questions; checked by rule with
`bench/check_questions.py`) and `tests/data/heldout_questions.jsonl`,
`tests/data/near_domain_seed.jsonl`; each question also as people type it (lower case, no
accents, no question mark). The evaluation files of ../shared/eval are never read here: they
measure the result (`bench/quality.py`, `assistant eval`).

For every question the real code path retrieves passages over the corpus plus those article
directories and describes every candidate sentence (`ExtractiveAnswerer.described`). A candidate
is the answer when it matches the question's pattern and comes from one of its sources.

- pick head: a conditional logit on the candidates of answerable questions (the softmax over a
  question's candidates should put its weight on the answer sentence);
- answers head: gradient-boosted trees (scikit-learn, exported as plain nodes), one row per
  question (the best pick's features and the question-level evidence), label "answerable"; its
  threshold refuses `--max-false-share` of the answerable training questions, read on
  out-of-fold probabilities (trees fitted without their articles). Questions refused by rule
  (a name no article of the answer mentions, no word the corpus knows) are left out of its fit;
- topic head (e5 only): a support-vector machine on the question's vector, label "plainly off the
  corpus's topic" (our unanswerable questions marked `off_topic`, and the domain-only questions
  of `bench/data/topic.jsonl`, off and on the topic); its threshold refuses `--topic-false-share`
  of the answerable training questions, on out-of-fold decision values. It refuses before the
  answers head reads anything.

Cross-validation by article group: the articles are split into 5 groups; each fold fits both heads
on the questions of four groups and measures the fifth (an unanswerable question belongs to the
article of its best passage, the entity it is about). The file records the procedure, the
training counts and these cross-validated numbers, which the README reports.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant import Assistant, Settings  # noqa: E402
from assistant.answer.extractive import ExtractiveAnswerer  # noqa: E402
from assistant.answer.pairs import (  # noqa: E402
    ANSWER_FEATURES,
    ANY_MODEL,
    PAIR_FEATURES,
    Logistic,
    Scorer,
    Topic,
    Trees,
    picked,
)
from assistant.config import E5_MODEL_NAME  # noqa: E402
from assistant.evaluation import (  # noqa: E402
    EvalQuestion,
    eval_settings,
    load_question_files,
    typed,
)
from assistant.text.reading import Question  # noqa: E402

DATA = ROOT / "bench" / "data"
NEIGHBOURS = ROOT.parent / "shared" / "eval" / "articles"
#: (article directories beside corpus/, question files): each file is read over the articles its
#: questions were written for (a far question of one file may name the city of an article of
#: our own, written later). train_d (954 questions drafted over 24 more articles of our own,
#: `articles_d/`, checked by `bench/check_questions.py`) is read apart from the earlier ones, so
#: that their described candidates, and the reader's out-of-fold rows over them, stay as they were.
SETS = [
    ([NEIGHBOURS], ["train_a.jsonl", "train_b.jsonl", "../../tests/data/heldout_questions.jsonl",
                    "../../tests/data/near_domain_seed.jsonl"]),
    ([NEIGHBOURS, DATA / "articles"], ["train_own.jsonl", "train_c.jsonl"]),
    ([NEIGHBOURS, DATA / "articles_d"], ["train_d.jsonl"]),
]
OUT = ROOT / "assistant" / "data" / "scorer.json"
#: Questions labelled on or off the corpus's topic only (no answer looked for): the topic head's
#: extra examples, each with its typed twin.
TOPIC_FILE = DATA / "topic.jsonl"
#: The topic head's C (scikit-learn's SVC, RBF kernel, gamma "scale"): of 1, 3 and 10, the one
#: refusing the most off-topic questions out of fold at the same answerable share (560, 611, 652
#: of 819), and the most of 40 written afresh (34, 35, 35). A logistic regression on the same
#: vectors refused 550 and 30 of those 40.
TOPIC_C = 10.0
COSINE = ("dense", "dense_gap", "semantic")  # left out of the fit for any other model
FOLDS = 5
MAX_FALSE_SHARE = 0.03  # of answerable training questions the answers head's threshold refuses
TOPIC_FALSE_SHARE = 0.001  # ... and the topic head's


def training_files() -> list[Path]:
    return [(DATA / name).resolve() for _, names in SETS for name in names]


@dataclass
class Example:
    """One training question with its described candidates."""

    q: EvalQuestion
    near: bool | None
    group: str = ""
    cands: list[Any] = field(default_factory=list)  # extractive.Candidate, features described
    passages: list[Any] = field(default_factory=list)
    positive: list[bool] = field(default_factory=list)
    describer: Any = None  # the Describer (index, retriever) it was described with
    question: Any = None  # the question as the answer read it (`text/reading.Question`)
    off_topic: bool = False  # unanswerable and plainly off the corpus's topic
    vector: Any = None  # the question's vector, as retrieval computed it

    @property
    def rows(self) -> list[dict[str, float]]:
        return [c.features for c in self.cands]


def questions(files: list[Path]) -> list[tuple[EvalQuestion, bool | None, bool]]:
    """(question, near, off_topic) of every line of `files`, each followed by its typed twin."""
    out = []
    for path in files:
        extra = {json.loads(line)["id"]: json.loads(line)
                 for line in path.read_text("utf-8").splitlines() if line.strip()}
        for q in load_question_files([path]):
            near, off = extra[q.id].get("near"), bool(extra[q.id].get("off_topic"))
            out.append((q, near, off))
            twin = typed(q.question)
            if twin != q.question:
                out.append((EvalQuestion(q.id + "-typed", twin, q.sources, q.pattern, q.kind),
                            near, off))
    return out


@dataclass
class TopicRow:
    """One question of `TOPIC_FILE`: its vector and whether it is off the corpus's topic."""

    id: str
    vector: Any
    off_topic: bool

    @property
    def group(self) -> str:
        """Its fold group: the question, with its typed twin."""
        return self.id.removesuffix("-typed")


def topic_rows(describer: Describer) -> list[TopicRow]:
    out = []
    for line in TOPIC_FILE.read_text("utf-8").splitlines():
        if not line.strip():
            continue
        j = json.loads(line)
        for suffix, text in (("", j["question"]), ("-typed", typed(j["question"]))):
            if suffix and text == j["question"]:
                continue
            out.append(TopicRow(j["id"] + suffix, describer.vector(text), bool(j["off_topic"])))
    return out


class Describer:
    """The real code path: retrieval, candidate sentences, the decision's evidence."""

    def __init__(self, bot: Assistant) -> None:
        self.bot = bot
        self.answerer = ExtractiveAnswerer(bot.settings)
        self.retriever = bot.retriever

    def vector(self, text: str) -> Any:
        """The question's vector as retrieval computes it (after `spelled`)."""
        return self.retriever.query_vector(self.retriever.spelled(Question.read(text)).text)

    def example(self, q: EvalQuestion, near: bool | None, off_topic: bool = False) -> Example:
        ex = Example(q, near, describer=self, off_topic=off_topic)
        asked = self.retriever.spelled(Question.read(q.question))
        ex.vector = self.retriever.query_vector(asked.text)
        ex.passages = self.retriever.search(asked, self.bot.settings.k)
        if not ex.passages:
            return ex
        ex.question, terms = self.answerer.prepared(asked, ex.passages, self.retriever)
        ex.cands = self.answerer.described(ex.question, ex.passages, self.retriever, terms)
        ex.positive = [q.answerable and q.matches(c.text) and q.from_source(c.passage.source)
                       for c in ex.cands]
        ex.group = q.sources[0] if q.sources else Path(ex.passages[0].source).stem
        return ex

    def answer_row(self, pick: Logistic, ex: Example) -> dict[str, float] | None:
        """The answers head's features, or None when a rule refuses the question (what
        `ExtractiveAnswerer.answers` reads, with the candidates ranked by `pick`)."""
        for c, p in zip(ex.cands, picked(pick, ex.rows)):
            c.score = p
        ranked = sorted(ex.cands, key=lambda c: (-c.score, c.rank, c.start))
        return self.answerer.answer_evidence(ex.question, ex.passages, self.retriever, ranked)


#: The pick head's L2 penalty. Right sentence first out of fold (by article) on our questions,
#: of 2 418: 0.1 -> 2 073, 1 -> 2 073, 10 -> 2 076, 100 -> 2 052; 1 (the value before) kept, 10
#: being within the noise of a refit.
PICK_L2 = 1.0


def fit_pick(examples: list[Example], features: tuple[str, ...]) -> Logistic:
    return Logistic.fit_conditional([(ex.rows, ex.positive) for ex in examples], features,
                                    l2=PICK_L2)


def fit_trees(rows: list[dict[str, float]], labels: list[float],
              features: tuple[str, ...]) -> Trees:
    """Gradient-boosted trees (scikit-learn), exported as plain nodes for `pairs.Trees`."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    x = np.array([[r.get(f, 0.0) for f in features] for r in rows])
    model = HistGradientBoostingClassifier(max_iter=150, learning_rate=0.05, max_leaf_nodes=8,
                                           min_samples_leaf=30, random_state=0).fit(x, labels)
    trees = []
    for (predictor,) in model._predictors:
        trees.append(tuple(
            (-1 if n["is_leaf"] else int(n["feature_idx"]), float(n["num_threshold"]),
             int(n["left"]), int(n["right"]), round(float(n["value"]), 6))
            for n in predictor.nodes))
    out = Trees(features, round(float(np.ravel(model._baseline_prediction)[0]), 6),
                tuple(trees))
    # the exported trees give scikit-learn's probabilities
    expected = model.predict_proba(x[:50])[:, 1]
    got = [out.probability(r) for r in rows[:50]]
    assert np.allclose(expected, got, atol=1e-4), (expected[:5], got[:5])
    return out


def answer_row(pick: Logistic, ex: Example) -> dict[str, float] | None:
    return ex.describer.answer_row(pick, ex)


def best_of(pick: Logistic, ex: Example) -> int:
    return int(np.argmax([pick.linear(r) for r in ex.rows]))


def fit_topic(vectors: np.ndarray, off: np.ndarray, groups: list[str], answerable: np.ndarray,
              false_share: float) -> Topic:
    """The topic head on question `vectors` (label `off`): a support-vector machine with an RBF
    kernel (scikit-learn); its threshold on the decision value refuses `false_share` of the
    `answerable` rows out of fold (folds by `groups`), never under 0."""
    from sklearn.svm import SVC

    def svm(x: np.ndarray, y: np.ndarray) -> Any:
        return SVC(C=TOPIC_C, kernel="rbf", gamma="scale", class_weight="balanced").fit(x, y)

    fold = fold_of(groups)
    scores = np.zeros(len(vectors))
    for k in range(FOLDS):
        inside = np.array([fold[g] != k for g in groups])
        scores[~inside] = svm(vectors[inside], off[inside]).decision_function(vectors[~inside])
    threshold = max(0.0, float(np.quantile(scores[answerable], 1.0 - false_share)))
    model = svm(vectors, off)
    topic = Topic(model.support_vectors_.astype(np.float32),
                  model.dual_coef_[0].astype(np.float32), round(float(model.intercept_[0]), 7),
                  float(model._gamma), round(threshold, 4))
    # the shipped form (float32) gives scikit-learn's decision values
    expected = model.decision_function(vectors[:50])
    got = [topic.score(v) for v in vectors[:50]]
    assert np.allclose(expected, got, atol=1e-3), (expected[:5], got[:5])
    return topic


def fit_topic_on(examples: list[Example], extra: list[TopicRow], false_share: float) -> Topic:
    """The topic head on the training questions (off: those marked `off_topic`) and `extra`."""
    vectors = np.array([ex.vector for ex in examples] + [r.vector for r in extra],
                       dtype=np.float64)
    off = np.array([ex.off_topic for ex in examples] + [r.off_topic for r in extra])
    answerable = np.array([ex.q.answerable for ex in examples] + [False] * len(extra))
    groups = [ex.group for ex in examples] + [r.group for r in extra]
    return fit_topic(vectors, off, groups, answerable, false_share)


def fit(examples: list[Example], max_false_share: float, without: tuple[str, ...] = (),
        topic: tuple[list[TopicRow], float] | None = None) -> Scorer:
    """Both heads (and the topic head when `topic` gives its extra rows and false share)."""
    pick_features = tuple(f for f in PAIR_FEATURES if f not in without)
    answer_feats = tuple(f for f in ANSWER_FEATURES if f not in without)
    pick = fit_pick(examples, pick_features)
    rows, labels, groups = [], [], []
    for ex in examples:
        row = answer_row(pick, ex)
        if row is not None:
            rows.append(row)
            labels.append(1.0 if ex.q.answerable else 0.0)
            groups.append(ex.group)
    answers = fit_trees(rows, labels, answer_feats)
    # The threshold from out-of-fold probabilities (trees fitted without the articles of the
    # rows they score): on its own training rows a tree model is surer than on new articles.
    fold = fold_of(groups)
    probs = np.zeros(len(rows))
    for k in range(FOLDS):
        inside = [i for i, g in enumerate(groups) if fold[g] != k]
        trees = fit_trees([rows[i] for i in inside], [labels[i] for i in inside], answer_feats)
        for i, g in enumerate(groups):
            if fold[g] == k:
                probs[i] = trees.probability(rows[i])
    y = np.array(labels)
    threshold = float(np.quantile(probs[y == 1], max_false_share))
    head = fit_topic_on(examples, *topic) if topic is not None else None
    return Scorer(pick, answers, round(threshold, 4), {}, head)


def fold_of(groups: list[str]) -> dict[str, int]:
    """Each article group's fold (seeded)."""
    names = sorted(set(groups))
    order = np.random.default_rng(0).permutation(len(names))
    return {names[j]: k % FOLDS for k, j in enumerate(order)}


def measure(scorer: Scorer, examples: list[Example]) -> dict[str, Any]:
    """First-sentence accuracy on answerable questions whose answer is among the candidates,
    and refusals (unanswerable near / far, answerable)."""
    first, reachable = 0, 0
    counts: Counter[str] = Counter()
    for ex in examples:
        row = answer_row(scorer.pick, ex)
        gated = scorer.topic is not None and scorer.topic.off_topic(ex.vector)
        refused = gated or row is None or scorer.answers.probability(row) < scorer.threshold
        counts["refused_off_topic"] += gated
        if ex.q.answerable:
            counts["answerable"] += 1
            counts["answerable_refused"] += refused
            counts["answerable_refused_off_topic"] += gated
            if any(ex.positive):
                reachable += 1
                first += ex.positive[best_of(scorer.pick, ex)]
        else:
            kind = "near" if ex.near else "far"
            counts[kind] += 1
            counts[f"{kind}_refused"] += refused
            if ex.off_topic:  # far questions plainly off the topic
                counts["off_topic"] += 1
                counts["off_topic_refused"] += refused
    return {"first_sentence": round(first / max(reachable, 1), 4), "reachable": reachable,
            **counts}


def cross_validated(examples: list[Example], max_false_share: float,
                    without: tuple[str, ...] = (),
                    topic: tuple[list[TopicRow], float] | None = None) -> dict[str, Any]:
    fold = fold_of([ex.group for ex in examples])
    extra_fold = fold_of([r.group for r in topic[0]]) if topic else {}
    total: Counter[str] = Counter()
    firsts = []
    for k in range(FOLDS):
        train = [ex for ex in examples if fold[ex.group] != k]
        test = [ex for ex in examples if fold[ex.group] == k]
        inside = None if topic is None else (
            [r for r in topic[0] if extra_fold[r.group] != k], topic[1])
        result = measure(fit(train, max_false_share, without, inside), test)
        firsts.append((result.pop("first_sentence"), result["reachable"]))
        total.update(result)
    reach = sum(n for _, n in firsts)
    return {"first_sentence": round(sum(f * n for f, n in firsts) / max(reach, 1), 4),
            **total}


def describe_all() -> tuple[list[Example], list[TopicRow]]:
    """Every training question of `SETS` (and its typed twin), described over its articles,
    and the questions of `TOPIC_FILE`."""
    base = Settings.from_env(corpus_dir=ROOT / "corpus", embedding_model=E5_MODEL_NAME)
    examples = []
    for articles, names in SETS:
        d = Describer(Assistant.load(eval_settings(base, articles)))
        examples += [d.example(*q) for q in questions([DATA / n for n in names])]
    return examples, topic_rows(d)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-false-share", type=float, default=MAX_FALSE_SHARE,
                        help="share of answerable training questions the threshold may refuse")
    parser.add_argument("--topic-false-share", type=float, default=TOPIC_FALSE_SHARE,
                        help="share of answerable training questions the topic head may refuse")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    t0 = time.perf_counter()
    examples, extra = describe_all()
    print(f"{len(examples)} questions described in {time.perf_counter() - t0:.1f} s", flush=True)
    fits = {}
    for name, without in ((E5_MODEL_NAME, ()), (ANY_MODEL, COSINE)):
        # the topic head reads e5's question vectors: the e5 fit only
        topic = (extra, args.topic_false_share) if name == E5_MODEL_NAME else None
        scorer = fit(examples, args.max_false_share, without, topic)
        about = {
            "procedure": "bench/fit_scorer.py: pick head = conditional logit on the candidate "
                         "sentences of answerable questions; answers head = gradient-boosted "
                         "trees (150, 8 leaves) on the best pick of every question not refused "
                         "by rule, threshold = the cut refusing "
                         f"{args.max_false_share:.0%} of the answerable training questions, on "
                         "out-of-fold probabilities (5 folds by article)"
                         + (f"; without {', '.join(without)}" if without else ""),
            "fitted_on": [str(p.relative_to(ROOT)) for p in training_files()]
                         + ["each question's typed twin"],
            "articles": ["corpus/", "../shared/eval/articles/", "bench/data/articles/",
                         "bench/data/articles_d/"],
            "date": time.strftime("%Y-%m-%d"),
            "questions": len(examples),
            "training": measure(scorer, examples),
            "cross_validated_by_article": cross_validated(examples, args.max_false_share,
                                                          without, topic),
        }
        if topic is not None:
            about["topic"] = ("support-vector machine (scikit-learn SVC, RBF kernel, C "
                              f"{TOPIC_C:g}, balanced classes) on the question's vector; label: "
                              "off the corpus's topic (questions marked off_topic, and "
                              f"{TOPIC_FILE.relative_to(ROOT)}: {len(extra)} with typed twins); "
                              f"threshold = the cut refusing {args.topic_false_share:.1%} of "
                              "the answerable training questions, out of fold")
        fits[name] = Scorer(scorer.pick, scorer.answers, scorer.threshold, about,
                            scorer.topic).to_dict()
        print(name, json.dumps({k: about[k] for k in ("training", "cross_validated_by_article")}),
              flush=True)
    args.out.write_text(json.dumps({"models": fits}, indent=1, ensure_ascii=False) + "\n",
                        encoding="utf-8")
    print(f"{time.perf_counter() - t0:.1f} s -> {args.out}")


if __name__ == "__main__":
    main()
