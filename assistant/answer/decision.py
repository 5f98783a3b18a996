"""The in/out-of-corpus decision: does the corpus hold the answer to this question?

No single signal tells (measured on the dev questions, see README "Answers"): a lexical coverage
threshold refuses paraphrased and English questions, a cosine threshold accepts questions about an
entity of the corpus asking for a fact it does not hold. So the decision weighs six kinds of
evidence, gathered from the retrieved passages and the candidate answer sentences:

    coverage   IDF-weighted share of the query's content words in the best passage (lexical;
               names weigh more, see `question.Terms`)
    semantic   best cosine between the question and a candidate sentence (stored vectors)
    focus      share of the question's *focus* words (neither the article's topic, nor a name,
               nor a word that only phrases a question: "habitants", "maire", "loyer"...) found
               in the best candidate sentences or the sentence before them
    english    share of English function words in the question (its words cannot match the
               French articles, so the lexical evidence means less)
    attribute  whether the *attribute* asked ("combien d'habitants", "le montant de la
               subvention", "qui préside") is in a candidate sentence, next to a figure when a
               figure is asked (`question.attribute_term`, `sentences.near_figures`): 1 when
               found, or when the question names none (a French question of another kind, an
               English one), 0 otherwise. "Combien d'habitants compte <lieu> ?" finds the place
               and figures of its firms, not a number of inhabitants
    paraphrase 1 - coverage when the attribute is not found, else 1: a paraphrased question
               misses its attribute along with its other words (low coverage), while a question
               whose words all match but its attribute asks for a fact the corpus lacks

combined by a logistic model whose weights, scaling and threshold live in `data/decision.json`,
one per packaged embedding model, plus one without the semantic evidence for any other model
(weights of all but english are constrained to be >= 0: more evidence never lowers the
confidence). Before the model, two rules: a French question that names something that
none of the articles of its best candidate sentences mentions ("la French Tech de Bordeaux" when
no such article speaks of Bordeaux, "Station F") is out of the corpus, whatever else matches;
so is a question none of whose words the corpus knows (another script, another language; figures
and one- or two-letter tokens do not count).
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

from ..records import Passage
from ..text.analysis import analyzed
from ..text.kinds import ATTRIBUTE_KINDS, attribute_term, kind_terms, question_kind
from ..text.question import content_terms, english_share, entity_terms, matches, name_terms
from ..text.sentences import near_figures

if TYPE_CHECKING:
    from ..search.retriever import HybridRetriever

FEATURES = ("coverage", "semantic", "focus", "english", "attribute", "paraphrase")
MONOTONE = ("coverage", "semantic", "focus", "attribute", "paraphrase")  # weights kept >= 0
TOP_SENTENCES = 3  # candidate sentences read for the focus words (their articles: the names)
ENGLISH = 0.2  # a question with this share of English function words is read as English
FIGURE_KINDS = frozenset({"number", "money", "area"})  # kinds answered by a figure


class SentenceView(Protocol):
    """What the decision reads of a candidate answer sentence."""

    text: str
    context: str
    features: dict[str, float]
    passage: Passage  # where it is cited from: its article (`source`) and `title`


@dataclass(frozen=True)
class Evidence:
    coverage: float
    semantic: float
    focus: float
    english: float
    attribute: float = 1.0
    paraphrase: float = 1.0
    # names of a French question unknown to the corpus, or all its words when none is known
    absent_names: tuple[str, ...] = ()

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
    # Figures and one- or two-letter tokens ("1", "or") name no topic: a question needs a word
    # the corpus knows ("<script>alert(1)</script>", "' OR 1=1 --" have none)
    words = [t for t in content_terms(question) if len(t) > 2 and not t.isdigit()]
    unseen = retriever.idf("\x00")  # the IDF of a term absent from the corpus
    if all(retriever.idf(t) >= unseen - 1e-9 for t in words):
        absent = tuple(content_terms(question)) or (question,)  # no word known to the corpus
    attribute = attribute_found(question, pool, retriever) if english < ENGLISH else 1.0
    return Evidence(coverage, semantic, focus, english, attribute,
                    1.0 if attribute else 1.0 - coverage, absent)


def attribute_found(question: str, pool: Sequence[SentenceView],
                    retriever: HybridRetriever) -> float:
    """1.0 when the attribute the question asks about its topic is in one of the candidate
    sentences (with the sentence before it), beside a figure when a figure is asked, in an
    article that mentions every name of the question (the inhabitants of another town answer
    nothing); 1.0 too when the question names no attribute (see
    `question.attribute_term`); else 0.0."""
    kind = question_kind(question)
    term = attribute_term(question) if kind in ATTRIBUTE_KINDS else None
    if term is None:
        return 1.0
    names = name_terms(question)
    for c in pool:  # every candidate: the answer may lie in the third or the sixth
        found = (near_figures(c.text) if kind in FIGURE_KINDS
                 else analyzed(f"{c.text}\n{c.context}"))
        if not matches(term, found):
            continue
        article = retriever.article_text(c.passage.source) or c.passage.text
        mentioned = analyzed(f"{c.passage.title}\n{article}")
        if all(matches(t, mentioned) for t in names):
            return 1.0
    return 0.0


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

