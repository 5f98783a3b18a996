"""The fact a question asks, found in a sentence (`text/facts.py`), and the fitted scorer's file
(`answer/pairs.py`): spans of each kind, their closeness to what is asked, the short answer."""

from __future__ import annotations

import pytest

from assistant.answer.extractive import short_answer
from assistant.answer.pairs import ANY_MODEL, QuestionView, Trees, default_scorer, picked
from assistant.config import E5_MODEL_NAME
from assistant.text.facts import fact_spans, implied_unit
from assistant.text.kinds import is_list_question


@pytest.mark.parametrize(("question", "sentence", "short"), [
    ("Quelle est la surface de la Serre numérique ?",
     "Ce lieu de 17 000 m² entièrement consacré à la création numérique.", "17 000 m²"),
    ("Quel est le budget annuel du laboratoire ?",
     "Ouvert en 2019, le laboratoire fonctionne avec un budget annuel de 680 000 euros.",
     "680 000 euros"),
    ("Combien de candidatures Ficelle a-t-il reçues ?",
     "Pour sa troisième promotion, Ficelle a reçu un nombre record de 146 candidatures.",
     "146 candidatures"),
    ("Combien de startups compte chaque promotion ?",
     "Deux promotions par an accueillent chacune six startups.", "six startups"),
    ("Qui dirige Ficelle ?",
     "« Notre rôle est de raccourcir ce chemin », explique Apolline Vercheval-Dumoulin, "
     "directrice de Ficelle.", "Apolline Vercheval-Dumoulin"),
    ("Quand la Serre a-t-elle été inaugurée ?",
     "Le chantier a commencé en juin 2012, pour une inauguration le 9 avril 2015.",
     "le 9 avril 2015"),
    ("Quel nom porte le fab lab de la Savonnerie marseillaise ?",
     "La Savonnerie de Marseille abrite un fab lab, l'Atelier 72.", "Atelier 72"),
    ("Où les produits sont-ils testés ?",
     "Les produits sont testés au col de la Forclaz, à 1 150 mètres.", "au col de la Forclaz"),
])
def test_short_answer_is_the_fact_beside_what_is_asked(question: str, sentence: str,
                                                       short: str) -> None:
    view = QuestionView.of(question)
    assert short_answer(view, sentence) == short
    assert short in sentence  # verbatim


def test_no_short_answer_without_a_fact_of_the_kind() -> None:
    view = QuestionView.of("Qui dirige la Serre numérique ?")
    assert short_answer(view, "La Serre numérique fédère les experts du numérique.") is None
    assert short_answer(QuestionView.of("Pourquoi ce nom ?"), "Un hommage au textile.") is None


def test_facts_the_question_already_states_are_not_answers() -> None:
    # a year copied from the question, a place the question names as an adjective
    assert not fact_spans("date", "Le cluster a été créé en 2015.", "Que s'est-il passé en 2015 ?")
    assert [s.text for s in fact_spans("place", "La startup est basée à Marseille.",
                                       "Où est la startup marseillaise ?")] == []
    # a sentence's first word and capitalised function words are no names
    assert fact_spans("name", "C'est tout un écosystème. Le lieu ouvre.", "Quel lieu ?") == ()


def test_kind_only_questions_imply_a_unit_and_lists_are_recognised() -> None:
    unit = implied_unit("Quel âge a la directrice ?")
    assert unit is not None and unit.search("48 ans") and not unit.search("48 startups")
    assert implied_unit("Quel est le budget ?") is None
    assert is_list_question("Citez les villes partenaires de Nancy.")
    assert is_list_question("Quels territoires le pôle fédère-t-il ?")
    assert is_list_question("Which companies joined the cluster?")
    assert not is_list_question("Quel est le budget du pôle ?")
    assert not is_list_question("What is the budget?")


def test_shipped_scorer_loads_for_each_model_and_its_trees_round_trip() -> None:
    for name in (E5_MODEL_NAME, ANY_MODEL):
        scorer = default_scorer(name)
        assert 0.0 < scorer.threshold < 1.0
        assert isinstance(scorer.answers, Trees) and scorer.answers.trees
        again = Trees.from_dict(scorer.answers.to_dict())
        row = {f: 0.5 for f in scorer.answers.features}
        assert again.probability(row) == scorer.answers.probability(row)
        assert "cross_validated_by_article" in scorer.about
        assert "dense" not in scorer.pick.features or name != ANY_MODEL
    rows = [{"own": 1.0, "slot": 1.0}, {"own": 0.0, "slot": 0.0}]
    p = picked(default_scorer(E5_MODEL_NAME).pick, rows)
    assert abs(sum(p) - 1.0) < 1e-9 and p[0] > p[1]
