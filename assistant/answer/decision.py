"""The in/out-of-corpus decision: does the corpus hold the answer to this question?

No single signal tells (measured on the dev questions, see README "Answers"): a lexical coverage
threshold refuses paraphrased and English questions, a cosine threshold accepts questions about an
entity of the corpus asking for a fact it does not hold. So the decision weighs four kinds of
evidence, gathered from the retrieved passages and the candidate answer sentences:

    coverage   IDF-weighted share of the query's content words in the best passage (lexical;
               names weigh more, see `question.Terms`)
    semantic   best cosine between the question and a candidate sentence (stored vectors)
    focus      share of the question's *focus* words (neither the article's topic, nor a name,
               nor a word that only phrases a question: "habitants", "maire", "loyer"...) found
               in the best candidate sentences or the sentence before them
    english    share of English function words in the question (its words cannot match the
               French articles, so the lexical evidence means less)

combined by a logistic model whose weights, scaling and threshold live in `data/decision.json`,
one per packaged embedding model, plus one without the semantic evidence for any other model
(weights of coverage, semantic and focus are constrained to be >= 0: more evidence never
lowers the confidence). Before the model, one rule: a French question that names something that
none of the articles of its best candidate sentences mentions ("la French Tech de Bordeaux" when
no such article speaks of Bordeaux, "Station F") is out of the corpus, whatever else matches.
`bench/fit_decision.py` fits them on question files over the corpus plus neighbouring articles
and writes that file with the procedure and the measured results; nothing is hand-tuned here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any, Protocol

from ..text.analysis import analyzed
from ..text.question import (
    content_terms,
    english_share,
    entity_terms,
    kind_terms,
    matches,
    name_terms,
)

if TYPE_CHECKING:
    from ..search.retriever import HybridRetriever

FEATURES = ("coverage", "semantic", "focus", "english")
MONOTONE = ("coverage", "semantic", "focus")  # fitted weights kept >= 0
TOP_SENTENCES = 3  # candidate sentences read for the focus words (their articles: the names)
ENGLISH = 0.2  # a question with this share of English function words is read as English


class SentenceView(Protocol):
    """What the decision reads of a candidate answer sentence."""

    text: str
    context: str
    features: dict[str, float]


@dataclass(frozen=True)
class Evidence:
    coverage: float
    semantic: float
    focus: float
    english: float
    absent_names: tuple[str, ...] = ()  # names of a French question unknown to the corpus

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if isinstance(v, float) else v)
                for k, v in asdict(self).items()}

    def vector(self) -> list[float]:
        return [float(getattr(self, f)) for f in FEATURES]


def focus_terms(question: str, topic: str) -> list[str]:
    """The question's content terms that are neither in `topic` (the best article's title) nor
    names: what is asked *about* the topic."""
    names = entity_terms(question)
    topical = analyzed(topic)
    return [t for t in content_terms(question) if t not in topical and t not in names
            and t not in kind_terms() and not t.isdigit()]


def gather(question: str, coverage: float, topic: str, pool: Sequence[SentenceView],
           articles: Sequence[str], retriever: HybridRetriever) -> Evidence:
    """The evidence for `question`, given the best passage's `coverage`, the best article's
    title (`topic`), the candidate answer sentences (best first) and the texts of the articles
    the answer would come from (where the question's names are looked for)."""
    semantic = max((c.features.get("dense", 0.0) for c in pool), default=0.0)
    focus = 1.0
    terms = focus_terms(question, topic)
    if terms:
        weights = {t: retriever.idf(t) for t in terms}
        near: set[str] = set()
        for c in pool[:TOP_SENTENCES]:
            near |= analyzed(f"{c.text}\n{c.context}")
        found = sum(w for t, w in weights.items() if matches(t, near))
        focus = found / (sum(weights.values()) or 1.0)
    english = english_share(question)
    absent: tuple[str, ...] = ()
    names = name_terms(question)
    if names and english < ENGLISH:
        mentioned: set[str] = set()
        for text in articles:
            mentioned |= analyzed(text)
        absent = tuple(sorted(t for t in names if not matches(t, mentioned)))
    return Evidence(coverage, semantic, focus, english, absent)


@dataclass(frozen=True)
class Model:
    """A logistic model over `FEATURES` (standardised), and the probability below which the
    answer is "not in the corpus"."""

    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    threshold: float
    about: dict[str, Any]

    def probability(self, evidence: Evidence) -> float:
        """The model's confidence that the corpus answers (0 when a name is unknown)."""
        if evidence.absent_names:
            return 0.0
        z = self.bias + sum(w * (v - m) / s for v, m, s, w in
                            zip(evidence.vector(), self.mean, self.scale, self.weights))
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))

    def in_corpus(self, evidence: Evidence, threshold: float | None = None) -> bool:
        return self.probability(evidence) >= (self.threshold if threshold is None else threshold)

    def to_dict(self) -> dict[str, Any]:
        return {"features": list(FEATURES), "mean": list(self.mean), "scale": list(self.scale),
                "weights": list(self.weights), "bias": self.bias, "threshold": self.threshold,
                "about": self.about}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Model:
        if list(data.get("features", [])) != list(FEATURES):
            raise ValueError(f"decision model features {data.get('features')} != {FEATURES}")
        return cls(tuple(map(float, data["mean"])), tuple(map(float, data["scale"])),
                   tuple(map(float, data["weights"])), float(data["bias"]),
                   float(data["threshold"]), dict(data.get("about", {})))


ANY_MODEL = "*"  # the entry for an embedding model without its own fit (no semantic weight)


@lru_cache(maxsize=8)
def default_model(embedding_model: str) -> Model:
    """The shipped decision for `embedding_model` (`assistant/data/decision.json` holds one
    fit per packaged embedding model: cosines of two models are not on the same scale), or the
    model-agnostic one, fitted without the semantic evidence, for any other model."""
    text = resources.files("assistant").joinpath("data", "decision.json").read_text("utf-8")
    fits = json.loads(text)["models"]
    return Model.from_dict(fits.get(embedding_model) or fits[ANY_MODEL])

