"""The question-level evidence of the in/out-of-corpus decision, and its two rules.

`gather` reads, from the retrieved passages and the best candidate sentences:

    coverage   IDF-weighted share of the query's content words in the best passage (lexical;
               names weigh more, see `question.Terms`)
    semantic   best cosine between the question and a candidate sentence (stored vectors)
    focus      share of the question's *focus* words (neither the article's topic, nor a name,
               nor a word that only phrases a question) found in the best candidate sentences
               or the sentence before them
    english    share of English function words in the question
    attribute  whether the *attribute* asked ("combien d'habitants", "le montant de la
               subvention", "qui préside") is in a candidate sentence, next to a figure when a
               figure is asked, in an article that names every name of the question (1 when the
               question names none)
    paraphrase 1 - coverage when the attribute is not found, else 1

and two rules refuse before any fitted model: a French question that names something that none
of the articles of its best candidate sentences mentions ("la French Tech de Bordeaux" when no
such article speaks of Bordeaux; typed without capitals, the places it names, see
`Question.with_names_from`) is out of the corpus, whatever else matches; so is a question
none of whose words the corpus knows (another script, another language; figures and one- or
two-letter tokens do not count). The evidence is read, with the best candidate's own features,
by the answers head of the pair scorer (`pairs.py`), fitted by `bench/fit_scorer.py`; where that
head is unsure, the reader (`embed/reader.py`: question and sentence read together) weighs in
(`ExtractiveAnswerer.weighed`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ..records import Passage
from ..text.analysis import analyzed
from ..text.facts import FIGURE_KINDS
from ..text.kinds import ATTRIBUTE_KINDS, kind_terms
from ..text.question import attribute_matches, matches
from ..text.reading import ENGLISH, Question
from ..text.sentences import near_figures

if TYPE_CHECKING:
    from ..search.retriever import HybridRetriever

FEATURES = ("coverage", "semantic", "focus", "english", "attribute", "paraphrase")
MONOTONE = ("coverage", "semantic", "focus", "attribute", "paraphrase")  # weights kept >= 0
TOP_SENTENCES = 3  # candidate sentences read for the focus words (their articles: the names)


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


def focus_terms(question: Question, topic: str) -> list[str]:
    """The question's content terms that are neither in `topic` (the best article's title) nor
    names: what is asked *about* the topic."""
    topical = analyzed(topic)
    return [t for t in question.content if t not in topical and t not in question.entities
            and t not in kind_terms() and not t.isdigit()]


def gather(question: Question, coverage: float, topic: str, pool: Sequence[SentenceView],
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
    english = question.english
    absent: tuple[str, ...] = ()
    names = question.names + tuple(t for t in question.places if t not in question.names)
    if names and english < ENGLISH:
        mentioned: set[str] = set()
        for text in articles:
            mentioned |= analyzed(text)
        absent = tuple(sorted(t for t in names if not matches(t, mentioned)))
    # Figures and one- or two-letter tokens ("1", "or") name no topic: a question needs a word
    # the corpus knows ("<script>alert(1)</script>", "' OR 1=1 --" have none)
    words = [t for t in question.content if len(t) > 2 and not t.isdigit()]
    unseen = retriever.idf("\x00")  # the IDF of a term absent from the corpus
    if all(retriever.idf(t) >= unseen - 1e-9 for t in words):
        absent = question.content or (question.text,)  # no word known to the corpus
    attribute = attribute_found(question, pool, retriever) if english < ENGLISH else 1.0
    return Evidence(coverage, semantic, focus, english, attribute,
                    1.0 if attribute else 1.0 - coverage, absent)


def attribute_found(question: Question, pool: Sequence[SentenceView],
                    retriever: HybridRetriever) -> float:
    """1.0 when the attribute the question asks about its topic is in one of the candidate
    sentences (with the sentence before it), beside a figure when a figure is asked, in an
    article that mentions every name of the question (the inhabitants of another town answer
    nothing); 1.0 too when the question names no attribute (see
    `question.attribute_term`); else 0.0."""
    kind = question.kind
    term = question.attribute if kind in ATTRIBUTE_KINDS else None
    if term is None:
        return 1.0
    names = question.names
    for c in pool:  # every candidate: the answer may lie in the third or the sixth
        found = (near_figures(c.text) if kind in FIGURE_KINDS
                 else analyzed(f"{c.text}\n{c.context}"))
        if not attribute_matches(term, found):
            continue
        article = retriever.article_text(c.passage.source) or c.passage.text
        mentioned = analyzed(f"{c.passage.title}\n{article}")
        if all(matches(t, mentioned) for t in names):
            return 1.0
    return 0.0
