"""Does this sentence state what the question asks? A fitted scorer of (question, sentence) pairs.

Every candidate sentence of an answer (see `extractive.sentence_candidates`) is described by the
`PAIR_FEATURES` below, read from the question (`text/reading.Question`: its analysed terms, its
kind and attribute), the sentence, its context and its article, and the cosine of the sentence's
vector (stored at index time) with the question's (nothing is embedded here). Two models read
them, both fitted by `bench/fit_scorer.py` on questions we wrote ourselves
(`bench/data/`), never on the evaluation files, and shipped in `assistant/data/scorer.json`:

    pick     which candidate states the fact: the first sentence of the answer (a conditional
             logit: linear scores, a softmax over the question's candidates)
    answers  the probability that the best candidate answers the question at all (gradient-
             boosted trees); below the fitted threshold the answer is "not in the corpus"
    topic    (e5 only) whether the question is plainly off the corpus's topic, from its vector
             alone (`Topic`, a support-vector machine); over its threshold it is refused before
             the answers head reads anything

The pick head learns from answerable questions only (their answer sentence against the other
candidates of the same question); the answers head learns from every question, the best pick of
an unanswerable one ("Quel âge a X ?" finds X's sentence, never an age) being its negatives.

    own       IDF-weighted share of the question's terms in the sentence
    local     ... in the sentence, the one before it, the list introduction, the title
    article   ... in the sentence's whole article (read near its start)
    prior     the passage's search score
    fact      the sentence holds the kind of fact asked (a new name, a figure with a unit...)
    shape     minus a penalty for headings, questions, list introductions, run-on paragraphs
    dense     cosine of the sentence's vector with the question's
    dense_gap that cosine minus the best one among the candidates
    focus     share of the question's focus words (what is asked about the topic) in the sentence,
              each or one of its synonyms (`question.attribute_matches`: "jeunes pousses" for
              "startups")
    names     share of the question's names in the sentence and its context
    attribute the attribute asked ("combien de salariés") is in the sentence, beside a figure
              when a figure is asked (0.5 when the question names no attribute)
    lead      the sentence is one of its article's first two (a news lead sets a scene)
    quote     the sentence is (inside) a quotation
    length    log of its length in words
    rank      the rank of its passage (0 for the best)
    english   share of English words in the question
    fact_*    `fact` for each family of kinds (person, figure, date, place or name): how much a
              fact of the asked kind is worth depends on the kind
    kind_none the question asks no kind of fact the rules know ("Pourquoi...", "Comment...")
    slot      how close the sentence's best fact of the asked kind is to the words of what is
              asked (`text/facts.slot`; 0 when it holds no such fact)
    former    a person is asked ("Qui dirige ... ?") and the sentence's best person's name (not
              a body's) is a role's former holder ("son prédécesseur, Corentin ...",
              `facts.former_holder`)
    unit      the unit a kind-only attribute implies is in the sentence ("Quel âge ?": "ans";
              0.5 when the question implies none)
    focus_article share of the focus words found anywhere in the sentence's article: an
              attribute the article never names ("la cotisation", "le loyer") is not answered
    list_items for a list question ("Citez...", "Quels sont les..."), how many names the
              sentence enumerates (a third each, at most 1); 0 for other questions
    list_shape for a list question, the sentence introduces a bulleted list (ends with ":") or
              is one of its items
    list_series for a list question, the items of an enumeration in prose ("un atelier, une
              salle d'immersion et un studio", `sentences.series_length`): a third per item
              after the first, at most 1; 0 for other questions
    speaker   a person is asked and the sentence quotes one of its people by name ("»,
              insiste Maud Kerléan, directrice ...", `facts.speaker`): who speaks for a
              place is often who runs it
    list_intro for a list question, the share of its focus words in the line introducing the
              bulleted list the sentence belongs to (or that it is): an item inherits what its
              introduction says ("Les services proposés aux créateurs :")
"""

from __future__ import annotations

import base64
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

import numpy as np

from ..linear import Logistic
from ..text.analysis import analyzed
from ..text.facts import FIGURE_KINDS, fact_spans, slot, speaker, states_unit
from ..text.question import attribute_matches, matches
from ..text.reading import Question
from ..text.sentences import introduces_list, near_figures, series_length

PAIR_FEATURES = ("own", "local", "article", "prior", "fact", "shape", "dense", "dense_gap",
                 "focus", "names", "attribute", "lead", "quote", "length", "rank", "english",
                 "fact_person", "fact_figure", "fact_date", "fact_named", "kind_none",
                 "slot", "unit", "focus_article", "list_items", "list_shape", "list_series",
                 "former", "speaker", "list_intro")
LEAD_CHARS = 2  # sentences of an article that count as its lead
ANY_MODEL = "*"  # the fit for an embedding model without its own (no cosine features)
_QUOTE = re.compile(r"[«“\"]")


def pair_features(q: Question, *, base: dict[str, float], sentence: str, context: str,
                  title: str, ordinal: int, rank: int, best_dense: float,
                  article_terms: frozenset[str],
                  intro: str | None = None) -> dict[str, float]:
    """The `PAIR_FEATURES` of one candidate: `base` holds own, local, article, prior, fact,
    shape and (when sentence vectors are used) dense; `ordinal` is the sentence's position in
    its article (0 for the first); `article_terms` the analysed terms of its article; `intro`
    the line introducing it when it is a bulleted item."""
    own_terms = analyzed(sentence)
    around = own_terms | analyzed(f"{context}\n{title}")
    f = dict(base)
    f.setdefault("dense", 0.0)
    f["dense_gap"] = f["dense"] - best_dense
    f["focus"] = (sum(1 for t in q.focus if attribute_matches(t, own_terms)) / len(q.focus)
                  if q.focus else 0.5)
    f["names"] = (sum(1 for t in q.names if matches(t, around)) / len(q.names)
                  if q.names else 0.5)
    if q.attribute is None:
        f["attribute"] = 0.5
    else:
        found = near_figures(sentence) if q.kind in FIGURE_KINDS else around
        f["attribute"] = 1.0 if attribute_matches(q.attribute, found) else 0.0
    f["lead"] = 1.0 if ordinal < LEAD_CHARS else 0.0
    f["quote"] = 1.0 if _QUOTE.search(sentence) else 0.0
    f["length"] = math.log1p(len(sentence.split())) / 4
    f["rank"] = min(rank, 10) / 10
    f["english"] = q.english
    fact = base.get("fact", 0.0)
    f["fact_person"] = fact if q.kind == "person" else 0.0
    f["fact_figure"] = fact if q.kind in FIGURE_KINDS else 0.0
    f["fact_date"] = fact if q.kind in {"date", "frequency"} else 0.0
    f["fact_named"] = fact if q.kind in {"place", "name"} else 0.0
    f["kind_none"] = 1.0 if q.kind is None else 0.0
    spans = slot(q.kind, sentence, q.text, q.focus, q.attribute, q.unit)
    f["slot"] = spans[0].score if spans else 0.0
    people = [s for s in spans if not s.body]  # "... diriger Feuillets de Normandie": a body
    f["former"] = 1.0 if people and people[0].former else 0.0
    f["unit"] = 0.5 if q.unit is None else 1.0 if states_unit(q.unit, sentence) else 0.0
    f["focus_article"] = (sum(1 for t in q.focus if matches(t, article_terms)) / len(q.focus)
                          if q.focus else 1.0)
    f["list_items"] = (min(1.0, len(fact_spans("name", sentence, q.text)) / 3) if q.is_list
                       else 0.0)
    opens_list = introduces_list(sentence)
    f["list_shape"] = 1.0 if q.is_list and (intro is not None or opens_list) else 0.0
    # items named in prose ("un atelier, une salle d'immersion et un studio"): 3 items 2/3, 4+ 1
    f["list_series"] = min(1.0, max(0, series_length(sentence) - 1) / 3) if q.is_list else 0.0
    heading = analyzed(intro) if intro else own_terms if opens_list else None
    f["list_intro"] = (sum(1 for t in q.focus if matches(t, heading)) / len(q.focus)
                       if q.is_list and q.focus and heading is not None else 0.0)
    f["speaker"] = 1.0 if q.kind == "person" and speaker(sentence) else 0.0
    return f


#: What the answers head reads: the best candidate's features, its pick probability, and the
#: question-level evidence of `decision.gather` (coverage of the best passage, focus words and
#: attribute over the best few candidates, best cosine).
#: (`list_series` and `list_intro` tell which sentence lists the items, `former` and `speaker`
#: which sentence names the person asked, not whether the articles hold them: the pick reads
#: them, this head does not.)
PICK_ONLY = frozenset({"list_series", "former", "speaker", "list_intro"})
ANSWER_FEATURES = (*(f for f in PAIR_FEATURES if f not in PICK_ONLY), "pick", "coverage",
                   "focus_pool", "attribute_pool", "semantic")


def answer_features(best: dict[str, float], pick: float, *, coverage: float, focus: float,
                    attribute: float, semantic: float) -> dict[str, float]:
    return {**best, "pick": pick, "coverage": coverage, "focus_pool": focus,
            "attribute_pool": attribute, "semantic": semantic}


def picked(pick: Logistic, rows: Sequence[dict[str, float]]) -> list[float]:
    """The pick head's probability that each candidate of one question is its answer (softmax
    of the conditional logit's scores over the candidates)."""
    if not rows:
        return []
    z = np.array([pick.linear(r) for r in rows])
    p = np.exp(z - z.max())
    return [float(v) for v in p / p.sum()]


@dataclass(frozen=True)
class Trees:
    """Gradient-boosted decision trees over raw features (fitted by scikit-learn in
    `bench/fit_scorer.py`, evaluated here in plain Python: a few hundred comparisons). Each
    node is (feature index, threshold, left, right, value); a leaf has feature -1; a row goes
    left when its value is <= the threshold."""

    features: tuple[str, ...]
    baseline: float
    trees: tuple[tuple[tuple[int, float, int, int, float], ...], ...]

    def probability(self, features: dict[str, float]) -> float:
        x = [features.get(f, 0.0) for f in self.features]
        z = self.baseline
        for nodes in self.trees:
            i = 0
            while nodes[i][0] >= 0:
                i = nodes[i][2] if x[nodes[i][0]] <= nodes[i][1] else nodes[i][3]
            z += nodes[i][4]
        return _sigmoid(z)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "trees", "features": list(self.features), "baseline": self.baseline,
                "trees": [[list(n) for n in nodes] for nodes in self.trees]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trees:
        return cls(tuple(data["features"]), float(data["baseline"]),
                   tuple(tuple((int(f), float(t), int(left), int(right), float(v))
                               for f, t, left, right, v in nodes) for nodes in data["trees"]))


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))



@dataclass(frozen=True, eq=False)
class Topic:
    """Is the question about the articles' domain at all? A support-vector machine (RBF kernel)
    on the question's vector (its embedding, as retrieval computed it): a score over 0 when it
    looks plainly off the topic of the corpus ("Quelle est la recette du cassoulet ?"), fitted by
    `bench/fit_scorer.py` on our questions labelled `off_topic` (and `bench/data/topic.jsonl`).
    At or over `threshold` (out-of-fold: it refuses almost none of our answerable questions)
    the question is refused before any sentence is read. A few hundred support vectors: ~0.1 ms
    a question."""

    support: np.ndarray  # (n, dimension) float32: the support vectors
    coef: np.ndarray  # (n,) float32: their dual coefficients (label x weight)
    intercept: float
    gamma: float  # of the kernel exp(-gamma |s - v|^2)
    threshold: float

    def score(self, vector: np.ndarray) -> float:
        distances = np.sum((self.support - np.asarray(vector, dtype=np.float32)) ** 2, axis=1)
        return float(self.coef @ np.exp(-self.gamma * distances)) + self.intercept

    def off_topic(self, vector: np.ndarray) -> bool:
        return self.score(vector) >= self.threshold

    def to_dict(self) -> dict[str, Any]:
        support = np.ascontiguousarray(self.support, dtype="<f4")
        return {"kind": "rbf-svm-on-question-vector", "shape": list(support.shape),
                "support_float32_base64": base64.b64encode(support.tobytes()).decode("ascii"),
                "coef": [round(float(c), 7) for c in self.coef],
                "intercept": self.intercept, "gamma": self.gamma, "threshold": self.threshold}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Topic:
        rows, columns = map(int, data["shape"])
        support = np.frombuffer(base64.b64decode(data["support_float32_base64"]), dtype="<f4")
        return cls(support.reshape(rows, columns).astype(np.float32),
                   np.asarray(data["coef"], dtype=np.float32), float(data["intercept"]),
                   float(data["gamma"]), float(data["threshold"]))


@dataclass(frozen=True)
class Scorer:
    """The heads and the refusal threshold, for one embedding model (`topic`: only for a model
    whose question vectors it was fitted on)."""

    pick: Logistic  # a conditional logit: see `picked`
    answers: Trees
    threshold: float
    about: dict[str, Any]
    topic: Topic | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {"pick": self.pick.to_dict(), "answers": self.answers.to_dict(),
               "threshold": self.threshold, "about": self.about}
        if self.topic is not None:
            out["topic"] = self.topic.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scorer:
        topic = Topic.from_dict(data["topic"]) if data.get("topic") else None
        return cls(Logistic.from_dict(data["pick"]), Trees.from_dict(data["answers"]),
                   float(data["threshold"]), dict(data.get("about", {})), topic)


@lru_cache(maxsize=8)
def default_scorer(embedding_model: str) -> Scorer:
    """The shipped scorer for `embedding_model` (cosines of two models are not on one scale),
    or the one fitted without the cosine features for any other model."""
    text = resources.files("assistant").joinpath("data", "scorer.json").read_text("utf-8")
    fits = json.loads(text)["models"]
    return Scorer.from_dict(fits.get(embedding_model) or fits[ANY_MODEL])
