"""Hybrid search quality and the public Python API."""

from __future__ import annotations

import dataclasses
import re
import threading
import types
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import assistant
from assistant import Assistant, ConfigError, Passage, QuestionError, Settings
from assistant.text.analysis import analyze
from assistant.text.question import derived_terms, english_gloss, matches
from assistant.text.reading import Question, accented_forms

ROOT = Path(__file__).resolve().parent.parent


def test_public_names() -> None:
    """`__all__` lists exactly the public names of the package (as httpx checks its own): each
    listed name exists, and each public non-module name of `assistant/__init__` is listed."""
    listed = assistant.__all__
    assert listed == sorted(set(listed)), "__all__: sorted, no duplicates"
    for name in listed:
        assert getattr(assistant, name) is not None, name  # lazy names resolve too
    public = {name for name in dir(assistant) if not name.startswith("_")
              and not isinstance(getattr(assistant, name), types.ModuleType)}
    assert public == set(listed) - {"__version__"}
    assert {"Assistant", "Settings", "Passage", "Answer"} <= set(listed)
    assert assistant.Assistant is Assistant and Assistant.__module__ == "assistant.core"


def test_dev_questions_passage_hit_at_5(
    seed_assistant: Assistant, dev_questions: list[dict[str, Any]]
) -> None:
    facts = [q for q in dev_questions if q["answer_pattern"]]
    hits = 0
    for q in facts:
        passages = seed_assistant.search(q["question"], k=5)
        hits += any(re.search(q["answer_pattern"], p.text) for p in passages)
    assert hits / len(facts) >= 0.9, f"hit@5 = {hits}/{len(facts)}"


def test_louvre_lens_vallee_director_is_found(seed_assistant: Assistant) -> None:
    passages = seed_assistant.search("Qui dirige la Louvre Lens Vallée ?", k=5)
    assert any("Maadnous" in p.text or "Balzerani" in p.text for p in passages)


def test_passages_are_typed_and_point_into_the_article(seed_assistant: Assistant) -> None:
    passages = seed_assistant.search("Serre numérique Valenciennes surface", k=4)
    assert len(passages) == 4
    assert all(isinstance(p, Passage) for p in passages)
    assert [p.score for p in passages] == sorted((p.score for p in passages), reverse=True)
    for p in passages:
        text = seed_assistant.article_text(p.source)
        assert text is not None and text[p.start : p.end] == p.text
        assert p.title and p.source.endswith(".txt")
    with pytest.raises(dataclasses.FrozenInstanceError):
        passages[0].score = 2.0  # type: ignore[misc]


def test_k_and_dense_weight_settings(seed_settings: Settings, embedder: Any) -> None:
    def bot(dense: float, sentence: float) -> Assistant:
        # each leg alone, its passages not raised towards their article (`article_weight`)
        return Assistant.load(seed_settings.replace(dense_weight=dense, sentence_weight=sentence,
                                                    article_weight=0.0), embedder=embedder)

    lexical, dense, sentences = bot(0.0, 0.0), bot(1.0, 0.0), bot(0.0, 1.0)
    hybrid = Assistant.load(seed_settings, embedder=embedder)
    question = "incubateur et hôtel d'entreprises à Lens"
    for b in (lexical, dense, sentences, hybrid):
        seven = [p.chunk_id for p in b.search(question, k=7)]
        assert len(set(seven)) == 7  # k passages, each once
        five = [p.chunk_id for p in b.search(question, k=5)]  # settings.k: what answers read
        assert [p.chunk_id for p in b.search(question, k=3)] == five[:3]  # k cuts, never reorders
    assert len(hybrid.search(question)) == seed_settings.k  # no k: the setting's
    rankings = [[p.chunk_id for p in b.search(question, k=5)] for b in (lexical, dense, sentences)]
    assert len({tuple(r) for r in rankings}) == 3  # each leg ranks on its own signal
    # The lexical leg ranks by the question's words: every passage naming a rare word comes
    # before any passage that does not.
    named = ["Bertelsmann" in p.text for p in lexical.search("Bertelsmann", k=5)]
    assert named[0] and named == sorted(named, reverse=True)
    # An English question: the French articles' meaning, not their words, finds the answer, in
    # both vector legs (chunks and sentences).
    english = "Which media group did the woman running the Lens digital cluster work for?"
    for b in (dense, sentences):
        assert any("Bertelsmann" in p.text for p in b.search(english, k=3))
    with pytest.raises(ConfigError, match="ne doit pas dépasser 1"):
        seed_settings.replace(dense_weight=0.7, sentence_weight=0.5)


def test_english_question_is_read_with_its_french_words() -> None:
    """An English question's words get their French glosses (`assistant/data/english_french.txt`,
    read in plural, past and -ing forms too) in the terms BM25 and the answer's lexical features
    read; the English function words phrase it and are no content; a French question is as it
    was."""
    q = Question.read("How many applications did the Tremplin programme receive?")
    assert {"candidatur", "dossi", "recevoir"} <= set(q.terms)
    assert "candidatur" in q.content and "how" not in q.content and "the" not in q.content
    assert english_gloss("Who founded it? Running costs") == (
        "fonder fondé fondée créé diriger piloter animer coût coûter coûté")
    assert english_gloss("Who founded it?", first_only=True) == "fonder"
    # the words of training, money and places that articles write in French
    assert english_gloss("How long is the internship of the trainees?") == (
        "stage stagiaire apprenant")
    assert english_gloss("What placement rate, which loan?") == "taux prêt"
    french = Question.read("Combien de candidatures le programme a-t-il reçues ?")
    assert french.terms == tuple(analyze(french.text))


def test_derived_words_the_stemmer_keeps_apart_join_the_bm25_query(
        seed_settings: Settings, embedder: Any) -> None:
    """"préside" stems to "presid", "président" to "president": the derivations table
    (`assistant/data/derivations.txt`) adds the article's stems to the BM25 terms (not to the
    content words the decision weighs), and `matches` accepts them."""
    q = Question.read("Qui préside le cluster Calicot ?")
    assert "president" in q.terms and "president" not in q.content
    assert derived_terms(["dirig"]) == ["direct", "directeur", "directric"]
    assert matches("dirig", frozenset({"directric"})) and matches("fond", frozenset({"fondatric"}))
    assert not matches("cre", frozenset({"creativ"}))
    # an article's terms (more than `CACHED_SET`, not cached) match as a sentence's do
    article = frozenset({"cofondateur", "directric"} | {f"mot{i}" for i in range(400)})
    assert matches("fondateur", article) and matches("dirig", article)
    assert not matches("creativ", article) and not matches("creativ", frozenset({"cre"}))
    # BM25 alone finds a director's passage from "dirige" ("directrice du site"); without the
    # derived stems its top 3 holds none
    lexical = Assistant.load(seed_settings.replace(dense_weight=0.0, sentence_weight=0.0),
                             embedder=embedder).retriever
    assert "directrice" in lexical.search("Qui dirige le cluster ?", k=3)[0].text


def test_words_typed_without_accents_are_spelt_as_the_articles_write_them(
        seed_assistant: Assistant) -> None:
    """The stemmer reads "vallee" and "Vallée", "pepiniere" and "pépinière" apart: a question
    typed without accents gets the articles' spelling of such words (checked against the
    lexical store's terms) before it is searched; known words and accented questions stay."""
    retriever = seed_assistant.retriever
    typed = Question.read("quelle est la capacite de la pepiniere de la louvre lens vallee")
    assert {"capacit", "pepinier", "valle"} <= set(typed.terms)
    spelt = retriever.spelled(typed)
    assert spelt.text == "quelle est la capacité de la pepinière de la louvre lens vallée"
    assert {"capac", "pepini", "vall"} <= set(spelt.terms) and spelt.asked == typed.asked
    careful = Question.read("Quelle est la capacité de la Louvre Lens Vallée ?")
    assert retriever.spelled(careful) is careful
    known = Question.read("qui dirige la louvre lens vallee depuis mai 2015")
    assert "qui dirige la louvre lens vallée" in retriever.spelled(known).text
    assert accented_forms("universite")[:3] == ["université", "universitè", "universitê"]
    # the search itself spells it: the same passages as the accented question (in the same
    # order before the rerank, which reads the question's capitals as names)
    typed_ids = [p.chunk_id for p in seed_assistant.search("la pepiniere de la louvre lens vallee")]
    careful_ids = [p.chunk_id
                   for p in seed_assistant.search("la pépinière de la Louvre Lens Vallée")]
    assert sorted(typed_ids) == sorted(careful_ids)
    assert ([c for c, _ in retriever.score("la pepiniere de la louvre lens vallee", 5)]
            == [c for c, _ in retriever.score("la pépinière de la Louvre Lens Vallée", 5)])


def test_lexical_weight_follows_what_bm25_can_match(seed_settings: Settings,
                                                    embedder: Any) -> None:
    """BM25's share of the fusion is scaled by the share of the question's ordinary words that
    the corpus holds; what it loses goes to the vector signals, in proportion of theirs."""
    hybrid = Assistant.load(seed_settings, embedder=embedder).retriever
    w_dense, w_sentence = seed_settings.dense_weight, seed_settings.sentence_weight
    settings_weights = (1.0 - w_dense - w_sentence, w_dense, w_sentence)

    def weights(retriever: Any, question: str) -> tuple[float, float, float]:
        return retriever._weights(Question.read(question))  # type: ignore[no-any-return]

    # Every word in the corpus, or names only: the settings' weights.
    for question in ("incubateur et hôtel d'entreprises à Lens", "Bertelsmann"):
        assert weights(hybrid, question) == pytest.approx(settings_weights)
    # An English question: its own words are not the articles' (the name "Lens" does not
    # count); the French words of its glossary (`question.english_gloss`) are, in part.
    unknown = weights(hybrid, "What is the zorblat of the Lens gizmo?")
    english = weights(hybrid, "How many startups does the Lens digital cluster host?")
    assert unknown[0] == pytest.approx(0.0)
    assert 0.0 < english[0] < settings_weights[0] * 2 / 3
    for w in (unknown, english):
        assert sum(w) == pytest.approx(1.0)
        assert w[1] / w[2] == pytest.approx(w_dense / w_sentence)
    # A fusion without a vector signal, or without BM25, keeps its weights.
    for dense, sentence in ((0.0, 0.0), (0.6, 0.4)):
        alone = Assistant.load(seed_settings.replace(dense_weight=dense, sentence_weight=sentence),
                               embedder=embedder).retriever
        assert weights(alone, "How many startups does the Lens digital cluster host?") == (
            pytest.approx((1.0 - dense - sentence, dense, sentence)))


@pytest.mark.parametrize("question", ["", "   ", "\n\t"])
def test_empty_questions_are_refused(seed_assistant: Assistant, question: str) -> None:
    with pytest.raises(QuestionError, match="vide"):
        seed_assistant.search(question)


def test_over_long_question_is_refused(seed_assistant: Assistant) -> None:
    with pytest.raises(QuestionError, match="trop longue"):
        seed_assistant.search("numérique " * 1000)


@pytest.mark.parametrize("question", ["🚀🚀🚀", "東京のスタートアップ", "\x00\x01 Lens ?", "???"])
def test_odd_questions_get_real_passages_and_no_made_up_answer(seed_assistant: Assistant,
                                                               question: str) -> None:
    """Search may return passages (the dense legs always have neighbours), but only real ones,
    best first; nothing in the corpus answers these, so `ask` refuses and cites nothing. With
    its control characters dropped, "Lens ?" still finds the Lens articles."""
    passages = seed_assistant.search(question, k=3)
    assert 0 < len(passages) <= 3 and all(isinstance(p, Passage) for p in passages)
    assert [p.score for p in passages] == sorted((p.score for p in passages), reverse=True)
    for p in passages:
        text = seed_assistant.article_text(p.source)
        assert text is not None and text[p.start:p.end] == p.text
    if "Lens" in question:
        assert "Lens" in passages[0].text or "Lens" in passages[0].title
        return
    answer = seed_assistant.ask(question)
    assert answer.in_corpus is False and answer.citations == [], answer.text
    assert answer.text and "[1]" not in answer.text


def test_each_article_text_is_read_once_per_question(seed_settings: Settings,
                                                     embedder: Any) -> None:
    """Search (sentence rerank), answer (coverage, candidates) and decision all need the texts
    of the retrieved articles: the retriever reads each one from the catalog once, and keeps
    the last ones for the next questions (a generation never changes)."""
    bot = Assistant.load(seed_settings, embedder=embedder)
    catalog = bot.retriever.index.db
    real = catalog.article_text
    reads: Counter[str] = Counter()

    def counted(source: str) -> str | None:
        reads[source] += 1
        return real(source)

    catalog.article_text = counted  # type: ignore[method-assign]
    answer = bot.ask("Quelle est la surface de la Serre numérique de Valenciennes ?")
    assert answer.in_corpus and answer.citations
    assert {p.source for p in answer.citations} <= set(reads)
    assert set(reads.values()) == {1}, reads  # each article once, for the whole question
    assert any(p.source == "serre-numerique-valenciennes.txt" for p in answer.citations)

    read_before = sum(reads.values())
    again = bot.ask("Quelle est la surface de la Serre numérique de Valenciennes ?")
    assert [p.source for p in again.citations] == [p.source for p in answer.citations]
    assert sum(reads.values()) == read_before  # the same articles: no catalog read at all

    # The cache is shared by threads (a server answers several questions at once).
    sources = [a["source"] for a in bot.articles()]
    expected = {s: real(s) for s in sources}
    bot2 = Assistant.load(seed_settings, embedder=embedder)
    mismatches: list[str] = []

    def read_all() -> None:
        for _ in range(20):
            for source in sources:
                if bot2.article_text(source) != expected[source]:
                    mismatches.append(source)

    threads = [threading.Thread(target=read_all) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert mismatches == [] and bot2.article_text("absent.txt") is None


def test_within_article_signals(seed_assistant: Assistant) -> None:
    """The two signals read on a chunk's whole article (`retriever.py` docstring): the passage
    signal ignores the question's words that are in the article's title and rewards a chunk
    holding a word rare among its article's chunks; a chunk whose article never names the
    place asked about is marked, the others not."""
    import numpy as np

    from assistant.text.analysis import analyze, analyzed

    retriever = seed_assistant.retriever
    source = "serre-numerique-valenciennes.txt"
    title = next(a["title"] for a in retriever.articles() if a["source"] == source)
    chunks = retriever.index.db.chunk_spans([source])[source]
    ids = np.array([cid for cid, _, _ in chunks], dtype=np.int64)
    text = retriever.article_text(source) or ""
    # A word of one chunk only, not in the title: that chunk alone gets the passage signal.
    counts = Counter(t for _, a, b in chunks for t in analyzed(text[a:b]))
    rare = next(t for _, a, b in chunks for t in sorted(analyzed(text[a:b]))
                if counts[t] == 1 and t not in analyzed(title) and len(t) > 4)
    holder = next(cid for cid, a, b in chunks if rare in analyzed(text[a:b]))
    asked = dataclasses.replace(Question.read("Et alors ?"), terms=(rare, *analyze(title)))
    passage, unnamed = retriever._within_articles(ids, asked)
    assert passage[list(ids).index(holder)] > 0
    assert all(p == 0 for cid, p in zip(ids, passage) if cid != holder)
    assert not unnamed.any()  # the question names nothing

    others = [a["source"] for a in retriever.articles() if a["source"] != source]
    far = next(s for s in others if "valenciennes" not in (retriever.article_text(s) or "")
               .lower())
    mixed = np.array([ids[0], retriever.index.db.chunk_spans([far])[far][0][0]], dtype=np.int64)
    question = "Quelle est la surface du bâtiment de Valenciennes ?"
    _, unnamed = retriever._within_articles(mixed, Question.read(question))
    assert unnamed.tolist() == [0.0, 1.0]


def test_fitted_fusion_ranks_by_its_probability(seed_settings: Settings, embedder: Any) -> None:
    """`fusion="fitted"`: the shipped conditional logit (`search/fusion.py`) adds up the
    candidates' signals; a passage's score is its softmax probability among the candidates,
    and `search` (without its rerank) orders by it. The default, a model without a fit and
    settings without sentence vectors keep the weights."""
    import numpy as np

    from assistant.search.fusion import FUSION_FEATURES, fitted_fusion

    fitted = Assistant.load(seed_settings.replace(fusion="fitted", rerank=False),
                            embedder=embedder)
    fusion = fitted.retriever.fusion()
    assert fusion is not None and fusion.features == FUSION_FEATURES
    question = "Quelle est la surface de la Serre numérique ?"
    asked = fitted.retriever.spelled(Question.read(question))
    found = fitted.retriever.candidate_signals(asked, 5)
    assert found is not None
    ids, signals = found
    assert set(FUSION_FEATURES) <= set(signals)
    probability = fusion.scores(signals)
    assert abs(probability.sum() - 1.0) < 1e-9 and (probability >= 0).all()
    passages = fitted.search(question, k=5)
    best = np.lexsort((ids, -probability))[:5]
    assert [p.chunk_id for p in passages] == [int(ids[i]) for i in best]
    assert [p.score for p in passages] == [round(float(probability[i]), 6) for i in best]
    assert re.search(r"17[\s\u00a0\u202f.]?000\s*m", passages[0].text)

    default = Assistant.load(seed_settings.replace(rerank=False), embedder=embedder)
    assert seed_settings.fusion == "weights" and default.retriever.fusion() is None
    weighted = default.retriever.weighted(asked, signals,
                                          article_weight=default.settings.article_weight)
    assert [p.chunk_id for p in default.search(question, k=5)] == [
        int(ids[i]) for i in np.lexsort((ids, -weighted))[:5]]
    no_sentences = seed_settings.replace(fusion="fitted", sentence_weight=0.0)
    assert Assistant.load(no_sentences, embedder=embedder).retriever.fusion() is None
    assert fitted_fusion("sentence-transformers/all-MiniLM-L6-v2") is None
    with pytest.raises(ConfigError, match="fusion"):
        seed_settings.replace(fusion="learned")


def _seed_training_rows(retriever: Any, corpus_dir: Path) -> Iterator[tuple[Any, ...]]:
    """Our own training questions about the seed articles (bench/data/train_a.jsonl), each
    with the question as search reads it, its candidates' ids and signals, and which hold its
    answer (from its article, with its pattern)."""
    import numpy as np

    from assistant.evaluation import load_question_files

    seed = {p.stem for p in corpus_dir.iterdir()}
    for q in load_question_files([ROOT / "bench" / "data" / "train_a.jsonl"]):
        if not q.answerable or q.pattern is None or not set(q.sources) <= seed:
            continue
        asked = retriever.spelled(Question.read(q.question))
        found = retriever.candidate_signals(asked, 5)
        assert found is not None
        ids, signals = found
        chunks = retriever.index.db.chunks_by_id(int(c) for c in ids)
        right = np.array([q.matches(chunks[int(c)][0]) and q.from_source(chunks[int(c)][1])
                          for c in ids])
        yield asked, ids, signals, right


def test_fusion_fit_learns_from_right_passages(seed_assistant: Assistant) -> None:
    """`Fusion.fit` (what bench/fit_fusion.py runs), on our own training questions about the
    seed articles: on the questions it was fitted on, it puts a right passage first at least as
    often as the settings' weights; its dict form scores the same."""
    import numpy as np

    from assistant.search.fusion import FUSION_FEATURES, Fusion

    retriever = seed_assistant.retriever
    rows = [(ids, signals, right.astype(float), retriever.weighted(asked, signals))
            for asked, ids, signals, right
            in _seed_training_rows(retriever, seed_assistant.settings.corpus_dir)]
    assert len(rows) >= 50
    fusion = Fusion.fit([(np.column_stack([s[f] for f in FUSION_FEATURES]), y)
                         for _, s, y, _ in rows])

    def first_right(scores: list[np.ndarray]) -> int:
        return sum(int(y[np.lexsort((ids, -s))[0]]) for (ids, _, y, _), s in zip(rows, scores))

    fitted = [fusion.scores(s) for _, s, _, _ in rows]
    assert first_right(fitted) >= first_right([w for *_, w in rows])
    again = Fusion.from_dict(fusion.to_dict())
    assert all(np.allclose(again.scores(s), f) for (_, s, _, _), f in zip(rows, fitted))


def test_article_weight_raises_a_chunk_towards_its_article(seed_settings: Settings,
                                                            embedder: Any) -> None:
    """`article_weight`: each candidate's score is the weighted mean of its own and its
    article's best candidate's, so an article's best chunk keeps its score and the others
    come closer to it. On our own training questions about the seed articles, the fusion's
    top 5 holds a right passage at least as often as without it (0: each its own score).
    `Assistant.search` raises them (the settings' weight, 1 by default); the passages an
    answer reads are the fusion's own."""
    import numpy as np

    bot = Assistant.load(seed_settings.replace(rerank=False), embedder=embedder)
    assert bot.settings.article_weight == 1.0
    plain = bot.retriever
    in_top5 = {"plain": 0, "lifted": 0}
    asked_any = 0
    for asked, ids, signals, right in _seed_training_rows(plain, seed_settings.corpus_dir):
        own = plain.weighted(asked, signals)
        raised = plain.weighted(asked, signals, article_weight=1.0)
        for number in np.unique(signals["article"]):
            inside = signals["article"] == number
            best = own[inside].max()
            assert np.isclose(raised[inside].max(), best)  # the article's best keeps its score
            assert np.allclose(raised[inside], (own[inside] + best) / 2)
        for name, scores in (("plain", own), ("lifted", raised)):
            in_top5[name] += bool(right[np.lexsort((ids, -scores))[:5]].any())
        asked_any += 1
    assert asked_any >= 50
    assert in_top5["lifted"] >= in_top5["plain"]
    # search follows the raised scores, an answer's passages their own
    question = "Quelle est la surface de la Serre numérique ?"
    asked = plain.spelled(Question.read(question))
    found = plain.candidate_signals(asked, 5)
    assert found is not None
    ids, signals = found
    raised = plain.weighted(asked, signals, article_weight=1.0)
    assert [p.chunk_id for p in bot.search(question, k=5)] == [
        int(ids[i]) for i in np.lexsort((ids, -raised))[:5]]
    own = plain.weighted(asked, signals)
    assert [p.chunk_id for p in plain.search(asked, 5)] == [
        int(ids[i]) for i in np.lexsort((ids, -own))[:5]]
    off = Assistant.load(seed_settings.replace(rerank=False, article_weight=0.0),
                         embedder=embedder)
    assert [p.chunk_id for p in off.search(question, k=5)] == [
        p.chunk_id for p in plain.search(asked, 5)]


def test_search_puts_first_the_passage_stating_what_is_asked(seed_settings: Settings,
                                                              embedder: Any) -> None:
    """`rerank` (the default): `search` returns the fusion's k passages, the one holding the
    sentence the answer's pick head scores best first (`ExtractiveAnswerer.ordered`); off,
    the fusion's order. On our own questions about the seed articles it puts a passage holding
    the answer first more often, and answers (which read the fusion's order) do not change."""
    from assistant.answer.extractive import ExtractiveAnswerer
    from assistant.evaluation import load_question_files

    reranked = Assistant.load(seed_settings, embedder=embedder)
    fused = Assistant.load(seed_settings.replace(rerank=False), embedder=embedder)
    assert seed_settings.rerank
    answerer = ExtractiveAnswerer(seed_settings)
    pick = answerer.scorer().pick
    first = {"reranked": 0, "fused": 0}
    moved = 0
    seed = {p.stem for p in seed_settings.corpus_dir.iterdir()}
    questions = [q for q in load_question_files([ROOT / "bench" / "data" / "train_a.jsonl"])
                 if q.answerable and q.pattern is not None and set(q.sources) <= seed]
    for q in questions:
        new, old = reranked.search(q.question, k=5), fused.search(q.question, k=5)
        assert sorted(p.chunk_id for p in new) == sorted(p.chunk_id for p in old)
        asked = fused.retriever.spelled(Question.read(q.question))
        question, terms = answerer.prepared(asked, old, fused.retriever)
        inside = answerer.described(question, old, fused.retriever, terms, neighbours=False)
        best = max(inside, key=lambda c: pick.linear(c.features))
        assert new[0].source == best.passage.source and new[0].start <= best.start < new[0].end
        first["reranked"] += q.matches(new[0].text) and q.from_source(new[0].source)
        first["fused"] += q.matches(old[0].text) and q.from_source(old[0].source)
        moved += new[0].chunk_id != old[0].chunk_id
    assert len(questions) >= 50 and moved >= 3, (len(questions), moved)
    assert first["reranked"] > first["fused"], first
    question = questions[0].question
    assert reranked.ask(question).text == fused.ask(question).text
