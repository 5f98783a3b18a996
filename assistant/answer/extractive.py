"""Answers with numbered citations, led by the fact asked, and an honest "not in the corpus".

    question ──contextualize(history)──> query ──search──> passages ──> candidate sentences
                                                                          │  pairs.py: features
           pick head (softmax over the candidates) ──> best first        │
     topic head, rules, answers head (decision.py evidence) ──> NOT_FOUND (+ leads)
                                                                          │
      ExtractiveAnswerer: **short fact** [1], then its sentence [1]  |  LLMAnswerer (llm.py)

**Candidates** are the sentences of the articles around the passages (split on the whole
article, so a chunk cut never truncates one; overlapping chunks give each sentence once), each
described by `pairs.PAIR_FEATURES` (overlap with the query, the kind of fact asked and where it
stands in the sentence, the stored sentence vector's cosine with the question: nothing is
embedded at question time) and ranked by the fitted pick head. **Coverage** (the IDF-weighted
share of the query's content words in the best passage, see `question.Terms`) is one piece of
the question-level evidence the answers head reads.

**The answer** is the best sentence, opened by the short fact it holds (`text/facts.py`: the span
of the asked kind closest to the words of what is asked) when the question asks a name, a
person, a figure, an amount, an area, a date or a place. A second sentence only when the pick is
unsure or the question asks no kind of fact; a list question gets the items of its list. A
further sentence must hold a query term itself or in the sentence it follows; a sentence that
opens on an anaphor ("Son porte-manteaux...", "Elle...") is shown after the sentence it refers
back to when that one names something.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Protocol

import numpy as np

from ..config import Settings
from ..embed.reader import reader_refusal, reader_use, shared_reader
from ..errors import ConfigError
from ..records import Answer, Passage
from ..records import cite as marker
from ..text.analysis import analyzed
from ..text.facts import slot
from ..text.question import Terms, contextualize
from ..text.reading import Question
from ..text.sentences import (
    display,
    fact_score,
    introduces_list,
    is_bullet,
    mostly_inside,
    proper_nouns,
    refers_back,
    split_sentences,
)
from .decision import TOP_SENTENCES, Evidence, gather
from .pairs import (
    ANY_MODEL,
    Scorer,
    answer_features,
    default_scorer,
    pair_features,
    picked,
)

if TYPE_CHECKING:
    from ..search.retriever import HybridRetriever

__all__ = ["NOT_FOUND", "Answerer", "ExtractiveAnswerer", "answer_pieces", "contextualize",
           "coverage", "make_answerer", "not_found"]

_BIG = 1 << 62
NOT_FOUND = "Je n'ai pas trouvé cette information dans les articles du corpus."
MAX_LEADS = 3
POOL = 6  # best candidate sentences considered for an answer
NEAR_CHARS = 400  # sentences of one article this close are read in their order
LEAD = 20_000  # characters of an article read to judge what it is about
KEEP_RATIO = 0.5  # further sentences must score at least this share of the best one
UNSURE = 0.7  # below this pick probability, the next best sentence is shown too

class Answerer(Protocol):
    def stream(self, question: Question, passages: list[Passage],
               retriever: HybridRetriever) -> Iterator[str | Answer]:
        """Text pieces, then exactly one final `Answer` (whose text is authoritative)."""
        ...


def make_answerer(settings: Settings, mode: str | None = None) -> Answerer:
    """The answerer for `mode` ("extractive" or "llm"; None: `settings.answerer`)."""
    mode = mode or settings.answerer
    if mode == "extractive":
        return ExtractiveAnswerer(settings)
    if mode == "llm":
        if not settings.llm_configured:
            raise ConfigError(
                "Le mode « llm » demande un modèle de langage : définissez "
                "ASSISTANT_LLM_BASE_URL (ex. http://localhost:11434/v1) et ASSISTANT_LLM_MODEL, "
                "ou utilisez le mode « extractive »."
            )
        from .llm import LLMAnswerer

        return LLMAnswerer(settings)
    raise ConfigError(f"Mode de réponse inconnu : {mode!r}. Choisissez extractive ou llm.")


def coverage(question: Question, passages: Sequence[Passage],
             retriever: HybridRetriever) -> float:
    """How much of the query's weighted content the best single passage holds, read with its
    title and the sentences just before and after it (a chunk cut can separate a name from
    its fact)."""
    terms = Terms.of(question, retriever)
    articles = {p.source: retriever.article_text(p.source) for p in passages}
    return max((terms.covered(analyzed(f"{p.title}\n{_window(p, articles.get(p.source))}"))
                for p in passages), default=0.0)


def _window(p: Passage, article: str | None) -> str:
    """The passage's text from the start of the sentence before it to the end of the one after."""
    if article is None or article[p.start:p.end] != p.text:
        return p.text
    spans = split_sentences(article)
    touched = _touching(spans, p.start, p.end)
    if not touched:
        return p.text
    lo = spans[max(touched[0] - 1, 0)][0]
    hi = spans[min(touched[-1] + 1, len(spans) - 1)][1]
    return article[min(lo, p.start):max(hi, p.end)]


def _touching(spans: Sequence[tuple[int, int]], start: int, end: int) -> range:
    """Indices of the sentence spans (sorted, disjoint) that overlap [start, end)."""
    first = bisect_right(spans, (start, _BIG)) - 1  # the last span starting at or before start
    if first < 0 or spans[first][1] <= start:
        first += 1
    last = bisect_left(spans, (end, -1))  # the first span starting at or after end
    return range(first, max(first, last))


def not_found(passages: Sequence[Passage], notice: str | None = None) -> Answer:
    """The honest refusal, with the closest passages (one per article, at most 3) as leads."""
    leads: list[Passage] = []
    for p in passages:
        if len(leads) < MAX_LEADS and all(p.source != q.source for q in leads):
            leads.append(p)
    return Answer(NOT_FOUND, [], in_corpus=False, notice=notice, leads=leads)


def answer_pieces(answer: Answer) -> Iterator[str]:
    """The answer text in a few pieces (one per citation marker that ends a sentence or a line)
    that join to `answer.text`."""
    if not answer.in_corpus:
        yield answer.text
        return
    parts = re.split(r"(?<=\])([ \n])(?=\S)", answer.text)
    yield parts[0]
    for sep, piece in zip(parts[1::2], parts[2::2]):
        yield sep + piece


# -- extractive answers ------------------------------------------------------------------------
@dataclass
class Candidate:
    """One sentence of an article near a retrieved passage."""

    passage: Passage  # the passage it is cited from, widened to cover the sentence if needed
    rank: int
    start: int  # offsets of the sentence in the article text
    end: int
    text: str  # as displayed
    prior: float  # the passage's search score (halved for a neighbouring sentence)
    ordinal: int = 0  # position of the sentence in its article (0: the first)
    context: str = ""  # previous sentence, list introduction
    intro: str | None = None  # the line introducing a bulleted list item
    lead: tuple[int, str] | None = None  # start and text of the sentence an anaphor refers to
    terms: set[str] = field(default_factory=set)
    features: dict[str, float] = field(default_factory=dict)
    score: float = 0.0


class ExtractiveAnswerer:
    """Offline and deterministic: the best supporting sentences of the passages, cited [n]."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def stream(self, question: Question, passages: list[Passage],
               retriever: HybridRetriever) -> Iterator[str | Answer]:
        answer = self.answer(question, passages, retriever)
        yield from answer_pieces(answer)
        yield answer

    def answer(self, question: Question, passages: list[Passage], retriever: HybridRetriever,
               *, notice: str | None = None, check_scope: bool = True) -> Answer:
        if not passages:
            return not_found(passages, notice)
        if check_scope and self.off_topic(question, retriever):
            return not_found([], notice)  # no leads: no article is near a recipe or the weather
        question, terms, ranked = self.candidates(question, passages, retriever)
        if check_scope and not self.answers(question, passages, retriever, ranked):
            return not_found(passages, notice)
        chosen = self.choose(question, self.reread(question, ranked), terms)
        if not chosen:
            return not_found(passages, notice)
        return cite(chosen, notice, short=short_answer(question, chosen[0].text))

    def in_corpus(self, question: Question, passages: list[Passage],
                  retriever: HybridRetriever) -> bool:
        """The in/out-of-corpus decision alone (what the LLM answerer asks before answering)."""
        if not passages or self.off_topic(question, retriever):
            return False
        question, _, ranked = self.candidates(question, passages, retriever)
        return self.answers(question, passages, retriever, ranked)

    def ordered(self, question: Question, passages: list[Passage],
                retriever: HybridRetriever) -> list[Passage]:
        """The passages rescored by the pick head and sorted (what `Assistant.search` returns,
        `settings.rerank`): each passage's score becomes the pick's probability of its best
        sentence (the softmax over the sentences inside the passages; a sentence belongs to the
        passage its start falls in; 0 for a passage without one), ties in their search order.
        The passage stating what is asked comes first. The pick alone: neither the reader nor
        the refusal is read."""
        if not passages:
            return passages
        question, terms = self.prepared(question, passages, retriever)
        inside = self.described(question, passages, retriever, terms, neighbours=False)
        probability = picked(self.scorer().pick, [c.features for c in inside])
        best = [0.0] * len(passages)
        for c, p in zip(inside, probability):
            for i, passage in enumerate(passages):
                if passage.source == c.passage.source and passage.start <= c.start < passage.end:
                    best[i] = max(best[i], p)
        order = sorted(range(len(passages)), key=lambda i: (-round(best[i], 6), i))
        return [replace(passages[i], score=round(best[i], 6)) for i in order]

    def candidates(self, question: Question, passages: list[Passage],
                   retriever: HybridRetriever) -> tuple[Question, Terms, list[Candidate]]:
        """The question and its terms (`prepared`) and every candidate sentence, best first,
        as `answer` reads them."""
        question, terms = self.prepared(question, passages, retriever)
        return question, terms, self.ranked(question, passages, retriever, terms)

    @staticmethod
    def prepared(question: Question, passages: list[Passage],
                 retriever: HybridRetriever) -> tuple[Question, Terms]:
        """The question as the answer reads it (a typed one with the names its articles write,
        see `Question.with_names_from`) and its weighted terms."""
        question = question.with_names_from(
            text for p in passages
            for text in (p.title, retriever.article_text(p.source) or p.text))
        # The article gives the topic (names); the sentence must hold what is asked about it.
        return question, Terms.of(question, retriever, entity_boost=0.5, absent_discount=1.0)

    def evidence(self, question: Question, passages: list[Passage],
                 retriever: HybridRetriever, pool: Sequence[Candidate]) -> Evidence:
        """The question-level evidence (see `decision.py`). The names of the question are looked
        for in the articles the answer would be drawn from (those of the best candidate
        sentences), not in every retrieved one: a neighbouring article that names the place
        asked about does not make a sentence about another place an answer."""
        texts: dict[str, str] = {}  # source -> title and text (a passage's if none is stored)
        for p in [c.passage for c in pool[:TOP_SENTENCES]] or passages:
            texts.setdefault(p.source, f"{p.title}\n{retriever.article_text(p.source) or p.text}")
        return gather(question, coverage(question, passages, retriever), passages[0].title,
                      pool, list(texts.values()), retriever)

    def answer_evidence(self, question: Question, passages: list[Passage],
                        retriever: HybridRetriever,
                        ranked: Sequence[Candidate]) -> dict[str, float] | None:
        """What the answers head reads (`pairs.ANSWER_FEATURES`), or None when a rule refuses
        the question (a name that no article of the answer mentions, no word the corpus
        knows)."""
        if not ranked:
            return None
        pool = ranked[:POOL]
        ev = self.evidence(question, passages, retriever, pool)
        if ev.absent_names:
            return None
        return answer_features(pool[0].features, pool[0].score, coverage=ev.coverage,
                               focus=ev.focus, attribute=ev.attribute, semantic=ev.semantic)

    def answers(self, question: Question, passages: list[Passage], retriever: HybridRetriever,
                ranked: Sequence[Candidate]) -> bool:
        """Whether the corpus answers a question on the articles' topic (`off_topic`, read
        first by `answer` and `in_corpus`): the rules, then the answers head of the scorer over
        its threshold (`settings.refusal_threshold` overrides the fitted one), with the reader's
        view where the head is unsure (`weighed`)."""
        row = self.answer_evidence(question, passages, retriever, ranked)
        if row is None:
            return False
        scorer = self.scorer()
        probability = scorer.answers.probability(row)
        if self.settings.refusal_threshold is not None:
            return probability >= self.settings.refusal_threshold
        return self.weighed(question, ranked, probability, scorer.threshold)

    def weighed(self, question: Question, ranked: Sequence[Candidate], probability: float,
                threshold: float) -> bool:
        """The answers head's decision (`probability` over `threshold`), with the reader's view
        of the pick's best candidates where the head is unsure (`reader_refusal`)."""
        use = reader_refusal() if self.settings.reader and ranked else None
        if use is None or not use.reads(probability, threshold):
            return probability >= threshold
        reader = shared_reader(self.settings)
        if reader is None:
            return probability >= threshold
        return use.answered(probability, threshold,
                            reader.scores(question.text, [c.text for c in ranked[:use.top]]))

    def off_topic(self, question: Question, retriever: HybridRetriever) -> bool:
        """The question is plainly off the articles' topic: the scorer's `topic` head on its
        vector (the one retrieval computed), when the scorer has one."""
        topic = self.scorer().topic
        return topic is not None and topic.off_topic(retriever.query_vector(question.text))

    def choose(self, question: Question, ranked: Sequence[Candidate],
               terms: Terms) -> list[Candidate]:
        """The answer's sentences: the best one first; for a list question, the items of its
        list in reading order (or the next best sentences on the topic); for a question asking
        no kind of fact ("Pourquoi ... ?") or an unsure pick, a second sentence close in score,
        after it."""
        if not ranked:
            return []
        best = ranked[0]
        ratio = KEEP_RATIO
        if question.is_list:
            items = list_items(best, ranked)
            if items:
                return with_leads([best, *items] if not best.intro else items)
            more, ratio = self.settings.max_answer_sentences, 0.0  # every item on the topic
        elif question.kind is None or best.score < UNSURE:
            more = min(2, self.settings.max_answer_sentences)
        else:
            more = 1
        chosen = [best]
        for c in ranked[1:POOL]:
            if len(chosen) >= more:
                break
            # On the question's topic: a query term in the sentence or in the one it follows:
            # "Le site abritera sur 3.000 m²..." continues the sentence naming the building.
            if (c.score < ratio * best.score
                    or not terms.covered(c.terms | analyzed(c.context))):
                continue
            if not any(_redundant(c, other) for other in chosen):
                chosen.append(c)
        # the sentence that states the fact leads (the short answer is taken from it)
        return with_leads([best, *natural_order(chosen[1:])])

    def reread(self, question: Question, ranked: list[Candidate]) -> list[Candidate]:
        """`ranked` with its few best re-ordered by the reader when the pick is unsure (the
        best candidate's probability under `unsure`; how many and the weight: `reader_use`):
        by log(pick probability) + weight x reader score. Their scores stay the pick's: when
        the reader puts another sentence first, the pick's own choice, more probable, follows
        it as the second sentence of an unsure answer (`choose`)."""
        if not self.settings.reader or not ranked:
            return ranked
        weight, unsure, top_n = reader_use()
        if ranked[0].score >= unsure:
            return ranked
        reader = shared_reader(self.settings)
        if reader is None:
            return ranked
        top = ranked[:top_n]
        score = (np.log(np.maximum([c.score for c in top], 1e-12))
                 + weight * reader.scores(question.text, [c.text for c in top]))
        order = sorted(range(len(top)), key=lambda i: (-score[i], top[i].rank, top[i].start))
        return [top[i] for i in order] + ranked[top_n:]

    def ranked(self, question: Question, passages: list[Passage], retriever: HybridRetriever,
               terms: Terms) -> list[Candidate]:
        """Every candidate sentence, best first (by the pick head of `pairs.Scorer`), with
        its `features`."""
        candidates = self.described(question, passages, retriever, terms)
        for c, p in zip(candidates, picked(self.scorer().pick, [c.features for c in candidates])):
            c.score = p
        candidates.sort(key=lambda c: (-c.score, c.rank, c.start))
        return candidates

    def scorer(self) -> Scorer:
        s = self.settings
        semantic = s.answer_dense_weight > 0 and s.dense_weight + s.sentence_weight > 0
        # Without sentence cosines (settings that turn them off), the fit that never used them.
        return default_scorer(s.embedding_model if semantic else ANY_MODEL)

    def described(self, question: Question, passages: list[Passage],
                  retriever: HybridRetriever, terms: Terms, *,
                  neighbours: bool = True) -> list[Candidate]:
        """Every candidate sentence of the passages with its `pairs.PAIR_FEATURES`
        (`neighbours`: see `sentence_candidates`)."""
        articles = {p.source: retriever.article_text(p.source) for p in passages}
        candidates = sentence_candidates(passages, articles, neighbours=neighbours)
        if not candidates or not terms.weights:
            return []
        kind = question.kind
        topical = {source: terms.covered(analyzed(f"{title}\n{(articles[source] or '')[:LEAD]}"))
                   for source, title in {p.source: p.title for p in passages}.items()}
        base: list[dict[str, float]] = []
        for c in candidates:
            c.terms = set(analyzed(c.text))
            base.append({
                "own": terms.covered(c.terms),
                "local": terms.covered(c.terms | analyzed(f"{c.passage.title}\n{c.context}")),
                "article": topical[c.passage.source],
                "prior": c.prior,
                "fact": fact_score(kind, c.text, question.asked) if kind else 0.0,
                "shape": -shape_penalty(c.text, bullet=c.intro is not None),
            })
        if self.settings.answer_dense_weight > 0:  # the sentences' stored vectors
            rows = retriever.sentences({c.passage.source for c in candidates})
            found = {(r.source, r.start): r for per_source in rows.values() for r in per_source}
            known = [i for i, c in enumerate(candidates) if (c.passage.source, c.start) in found]
            sims = retriever.sentence_similarity(
                question.text, [found[(candidates[i].passage.source, candidates[i].start)]
                        for i in known])
            for i, sim in zip(known, sims):
                base[i]["dense"] = float(sim)
        best_dense = max((b.get("dense", 0.0) for b in base), default=0.0)
        words = {p.source: analyzed(f"{p.title}\n{articles[p.source] or p.text}")
                 for p in passages}
        for c, b in zip(candidates, base):
            c.features = pair_features(question, base=b, sentence=c.text, context=c.context,
                                       title=c.passage.title, ordinal=c.ordinal, rank=c.rank,
                                       best_dense=best_dense,
                                       article_terms=words[c.passage.source],
                                       intro=c.intro)
        return candidates


MAX_ITEMS = 12  # items of a list shown in an answer


def list_items(best: Candidate, ranked: Sequence[Candidate]) -> list[Candidate]:
    """The bulleted items of the list `best` introduces (a line ending with ":") or belongs to,
    among the candidates, in reading order."""
    intro = best.intro or (best.text if introduces_list(best.text) else None)
    if intro is None:
        return []
    items = [c for c in ranked if c.intro == intro and c.passage.source == best.passage.source]
    return sorted(items, key=lambda c: c.start)[:MAX_ITEMS]


def short_answer(question: Question, sentence: str) -> str | None:
    """The fact asked, verbatim from `sentence`, when the question asks a name, a person, a
    figure, an amount, an area, a date or a place (`text/facts.slot`): the span of that kind
    closest to the words of what is asked."""
    if question.kind is None:
        return None
    spans = slot(question.kind, sentence, question.text, question.focus, question.attribute,
                 question.unit)
    return spans[0].text.strip(" ,;:") if spans else None


def natural_order(chosen: Sequence[Candidate]) -> list[Candidate]:
    """Best first, except that sentences of one article close together (a stretch of text,
    gaps under `NEAR_CHARS`) are kept together and read in their order."""
    stretches: list[list[Candidate]] = []
    for c in chosen:  # best first
        for stretch in stretches:
            if stretch[0].passage.source == c.passage.source and any(
                    c.start - o.end < NEAR_CHARS and o.start - c.end < NEAR_CHARS
                    for o in stretch):
                stretch.append(c)
                break
        else:
            stretches.append([c])
    return [c for stretch in stretches for c in sorted(stretch, key=lambda c: c.start)]


def with_leads(chosen: Sequence[Candidate]) -> list[Candidate]:
    """Each sentence that opens on an anaphor ("Son porte-manteaux...", "Elle..."), shown after
    the sentence it refers back to, unless that one is already in the answer."""
    out = []
    for c in chosen:
        if c.lead is not None and not any(
                o.passage.source == c.passage.source and o.start <= c.lead[0] < o.end
                for o in chosen):
            c = replace(c, start=c.lead[0], text=f"{c.lead[1]} {c.text}")
        out.append(c)
    return out


def shape_penalty(text: str, *, bullet: bool = False) -> float:
    """Headings, list introductions, interview questions and run-on paragraphs answer poorly
    (a bulleted item is short by nature: its list introduction gives the context)."""
    n = len(text.split())
    end = text.rstrip(" »\"”’)")
    penalty = 0.0
    if end.endswith("?"):
        penalty += 0.3
    if end.endswith(":"):
        penalty += 0.3
    elif n < 12 and not bullet and not end.endswith((".", "!", "…")):
        penalty += 0.1  # a heading
    if n < 4 and not bullet:
        penalty += 0.15
    if n > 80:
        penalty += 0.1
    return penalty


def _redundant(a: Candidate, b: Candidate) -> bool:
    if a.passage.source == b.passage.source and a.start < b.end and b.start < a.end:
        return True
    union = a.terms | b.terms
    return bool(union) and len(a.terms & b.terms) / len(union) > 0.6


def sentence_candidates(passages: Sequence[Passage], articles: dict[str, str | None], *,
                        neighbours: bool = True) -> list[Candidate]:
    """Every sentence mostly inside a retrieved passage, and (`neighbours`) the one just before
    and after it, once (overlapping chunks de-duplicated), attached to the best-ranked passage
    holding it (widened to cover it), with exact offsets into the article text."""
    seen: set[tuple[str, int]] = set()
    out: list[Candidate] = []
    for rank, p in enumerate(passages):
        article, base = articles.get(p.source), 0
        if article is None or article[p.start:p.end] != p.text:
            article, base = p.text, p.start  # stale or missing article: split the chunk alone
        spans = split_sentences(article)
        near = _touching(spans, p.start - base, p.end - base)
        inside = [i for i in near
                  if mostly_inside(spans[i][0] + base, spans[i][1] + base, p.start, p.end)]
        if not inside:
            continue
        around = [i for i in (inside[0] - 1, inside[-1] + 1)
                  if neighbours and 0 <= i < len(spans)]
        for i in sorted(set(inside) | set(around)):
            a, b = spans[i]
            lo, hi = a + base, b + base
            if (p.source, lo) in seen:
                continue
            seen.add((p.source, lo))
            intro = _list_intro(article, spans, i) if is_bullet(article[a:b]) else None
            lead = None
            if (i and refers_back(article[a:b]) and "\n" not in article[spans[i - 1][1]:a]
                    and proper_nouns(article[spans[i - 1][0]:spans[i - 1][1]])):
                lead = (spans[i - 1][0] + base, display(article[spans[i - 1][0]:spans[i - 1][1]]))
            first = min(lo, intro[1] + base if intro else lo, lead[0] if lead else lo)
            cited = p
            if base == 0 and (first < p.start or hi > p.end):
                start, end = min(p.start, first), max(p.end, hi)
                cited = replace(p, text=article[start:end], start=start, end=end)
            context = display(article[spans[i - 1][0]:spans[i - 1][1]]) if i else ""
            prior = float(p.score) * (1.0 if i in inside else 0.75)
            out.append(Candidate(cited, rank, lo, hi, display(article[a:b]), prior, i,
                                 context=f"{context}\n{intro[0] if intro else ''}",
                                 intro=intro[0] if intro else None, lead=lead))
    return out


def _list_intro(article: str, spans: Sequence[tuple[int, int]],
                i: int) -> tuple[str, int] | None:
    """The line ending with ":" that introduces the bulleted item `spans[i]`, and its start."""
    for a, b in reversed(spans[max(0, i - 12):i]):
        if is_bullet(article[a:b]):
            continue
        return (display(article[a:b]), a) if introduces_list(article[a:b]) else None
    return None


def cite(chosen: Sequence[Candidate], notice: str | None = None, *,
         short: str | None = None) -> Answer:
    """The answer text, each sentence followed by [n], numbered in order of first use; the items
    of a list bulleted under their introduction's line; a short answer (`short`, taken from the
    first sentence) leads, in bold, on a line of its own."""
    citations: list[Passage] = []
    number_of: dict[int, int] = {}
    parts: list[str] = []
    intros_shown: set[str] = set()
    bullets = len(chosen) > 1 and all(c.intro for c in chosen)
    after_intro = "\n" if bullets else " "
    for c in chosen:
        n = number_of.get(c.passage.chunk_id)
        if n is None:
            citations.append(c.passage)
            n = number_of[c.passage.chunk_id] = len(citations)
        else:
            citations[n - 1] = _union(citations[n - 1], c.passage)
        text = f"- {c.text}" if bullets else c.text
        if c.intro and c.intro not in intros_shown:  # the list's introduction, on its line
            intros_shown.add(c.intro)
            text = f"{c.intro.rstrip(' :')} :{after_intro}{text}"
        parts.append(f"{text} {marker(n)}")
    body = "\n".join(parts) if bullets else " ".join(parts)
    if short:
        body = f"**{short}** {marker(1)}\n{body}"
    return Answer(body, citations, in_corpus=True, notice=notice, short=short)


def _union(a: Passage, b: Passage) -> Passage:
    """Two views of one chunk, widened differently: the span covering both."""
    left, right = (a, b) if a.start <= b.start else (b, a)
    if right.end <= left.end:
        return left
    return replace(left, text=left.text + right.text[left.end - right.start:], end=right.end)
