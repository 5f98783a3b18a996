"""The fact a question asks, found in a sentence (`text/facts.py`), and the fitted scorer's file
(`answer/pairs.py`): spans of each kind, their closeness to what is asked, the short answer."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.answer.extractive import short_answer
from assistant.answer.pairs import (
    ANY_MODEL,
    Topic,
    Trees,
    default_scorer,
    pair_features,
    picked,
)
from assistant.config import E5_MODEL_NAME
from assistant.text.analysis import analyze
from assistant.text.facts import fact_spans, former_holder, implied_unit, slot, speaker
from assistant.text.kinds import is_list_question, without_request
from assistant.text.question import places_in
from assistant.text.reading import Question
from assistant.text.sentences import series_length


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
    # a figure across a comma counts another noun
    ("Combien de places compte l'auditorium ?",
     "Le bâtiment offre un amphithéâtre de 320 places, un auditorium de 90 places et un bar.",
     "90 places"),
    # spelled figures, compound, with an adjective before what they count
    ("Combien de jeunes entreprises la pépinière héberge-t-elle ?",
     "La pépinière héberge aujourd'hui vingt-trois jeunes entreprises.",
     "vingt-trois jeunes entreprises"),
    # the unit a question implies: a length of time, not a count
    ("Combien de temps dure le programme ?",
     "Les six startups retenues suivent un programme qui dure neuf mois.", "neuf mois"),
    ("Quelle part du capital prend le fonds ?",
     "En échange de 40 000 euros, le fonds prend 6 % du capital.", "6 %"),
    # a name of two words opening the sentence, and one in capitals
    ("Quelle jeune pousse fabrique des nichoirs connectés ?",
     "Merle Moqueur fabrique des nichoirs connectés pour les écoles.", "Merle Moqueur"),
    ("Qui préside le pôle ?", "JEANNE DUVAL-ROCHE présidente du pôle / maire de Lunel",
     "JEANNE DUVAL-ROCHE"),
    # a name right after a role is a person's, not the body asked
    ("Quel organisme la directrice est-elle partie diriger ?",
     "Sa directrice Odile Brasquet a été nommée à la tête de Cinémaxe, l'agence régionale "
     "du film.", "Cinémaxe"),
])
def test_short_answer_is_the_fact_beside_what_is_asked(question: str, sentence: str,
                                                       short: str) -> None:
    view = Question.read(question)
    assert short_answer(view, sentence) == short
    assert short in sentence  # verbatim


def test_no_short_answer_without_a_fact_of_the_kind() -> None:
    view = Question.read("Qui dirige la Serre numérique ?")
    assert short_answer(view, "La Serre numérique fédère les experts du numérique.") is None
    assert short_answer(Question.read("Pourquoi ce nom ?"), "Un hommage au textile.") is None


def test_facts_the_question_already_states_are_not_answers() -> None:
    # a year copied from the question, a place the question names as an adjective
    assert not fact_spans("date", "Le cluster a été créé en 2015.", "Que s'est-il passé en 2015 ?")
    assert [s.text for s in fact_spans("place", "La startup est basée à Marseille.",
                                       "Où est la startup marseillaise ?")] == []
    # a figure in letters copied from the question
    assert not fact_spans("number", "Ici cohabitent les trois écoles du groupe.",
                          "Combien d'étudiants comptent les trois écoles ?")
    assert [s.text for s in fact_spans("number", "Les trois écoles comptent 900 étudiants.",
                                       "Combien d'étudiants comptent les écoles ?")] == [
        "trois écoles", "900 étudiants"]
    # a sentence's first word and capitalised function words are no names
    assert fact_spans("name", "C'est tout un écosystème. Le lieu ouvre.", "Quel lieu ?") == ()


def test_a_role_s_former_holder_is_told_from_the_current_one() -> None:
    before = "Son prédécesseur, Corentin Lebrun, est parti diriger une agence."
    now = "La directrice, Léa Martin, est arrivée en 2021."

    def former(question: str, sentence: str) -> float:
        return pair_features(Question.read(question), base={}, sentence=sentence, context="",
                             title="", ordinal=3, rank=0, best_dense=0.0,
                             article_terms=frozenset())["former"]

    assert former_holder(before, before.index("Corentin"), "Qui dirige le laboratoire ?")
    assert former("Qui dirige le laboratoire ?", before) == 1.0
    assert former("Qui dirige le laboratoire ?", now) == 0.0
    # asked about the former one, or not about a person: no such feature
    assert former("Qui dirigeait le laboratoire avant elle ?", before) == 0.0
    assert former("Quelle agence dirige-t-il ?", before) == 0.0
    # a body named closer to the role asked ("diriger Lumen de Bretagne") is no person: the
    # sentence's person is still the former holder
    body = ("Le laboratoire était resté sans pilote un an : son prédécesseur, Corentin Lebrun, "
            "était parti fin 2019 diriger Lumen de Bretagne, l'agence régionale du livre.")
    spans = slot("person", body, "Qui dirige le laboratoire ?", ("dirig", "laboratoir"))
    assert spans[0].text == "Lumen de Bretagne" and spans[0].body and not spans[0].former
    assert former("Qui dirige le laboratoire ?", body) == 1.0


def test_a_quoted_speaker_and_a_list_s_introduction_are_read() -> None:
    quoted = "« Nous voulons grandir », insiste Maud Kerléan, directrice du lieu."
    assert speaker(quoted)
    assert not speaker("Maud Kerléan dirige le lieu depuis 2020.")
    assert not speaker("« Nous voulons grandir », dit-elle.")  # nobody named

    def features(question: str, sentence: str, intro: str | None = None) -> dict[str, float]:
        return pair_features(Question.read(question), base={}, sentence=sentence, context="",
                             title="", ordinal=3, rank=0, best_dense=0.0,
                             article_terms=frozenset(), intro=intro)

    assert features("Qui dirige le lieu ?", quoted)["speaker"] == 1.0
    assert features("Combien de salariés compte le lieu ?", quoted)["speaker"] == 0.0
    intro = "Les services proposés aux créateurs :"
    item = "un atelier de prototypage ouvert le soir"
    asked = "Quels services la Filature propose-t-elle aux créateurs ?"
    assert features(asked, item, intro)["list_intro"] == 1.0  # services, propos, créateur
    assert features(asked, intro)["list_intro"] == 1.0
    assert features(asked, item)["list_intro"] == 0.0  # not in a list
    assert features("Quel service propose-t-elle aux créateurs ?", item, intro)[
        "list_intro"] == 0.0  # not a list question


def test_kind_only_questions_imply_a_unit_and_lists_are_recognised() -> None:
    unit = implied_unit("Quel âge a la directrice ?")
    assert unit is not None and unit.search("48 ans") and not unit.search("48 startups")
    # an age as articles state it, not a length of time
    for age in ("Inès Barjavel, 38 ans, dirige", "cet ingénieur de 46 ans", "À 47 ans, ce natif",
                "J'ai 54 ans", "le pôle fête ses dix ans", "Karim Benhaddou (36 ans)"):
        assert unit.search(age), age
    for length in ("il faut souvent cinq ou six ans pour vendre", "elle a dirigé pendant huit ans",
                   "il y a six ans", "d'ici à cinq ans", "en moins de deux ans",
                   "qui a vingt ans de métier", "elle a travaillé dix ans comme"):
        assert not unit.search(length), length
    question = "Quel âge a la directrice ?"
    sentence = "Il faut six ans pour cela, dit Léa Roy, 42 ans."
    spans = slot("number", sentence, question, ("directeur",), unit=unit)
    assert spans[0].text == "42 ans" and spans[0].score > 10 * spans[1].score
    # a name asked ("Quelle startup ... ?") is a body's, not a person's
    name = Question.read("Quelle startup a remporté le prix ?")
    assert short_answer(name, "Lauréate du prix, Léa Martin présente Ombelle Énergie.") == (
        "Ombelle Énergie")
    assert implied_unit("Quel est le budget ?") is None
    assert is_list_question("Citez les villes partenaires de Nancy.")
    assert is_list_question("Quels territoires le pôle fédère-t-il ?")
    assert is_list_question("Which companies joined the cluster?")
    assert not is_list_question("Quel est le budget du pôle ?")
    assert not is_list_question("What is the budget?")


def test_the_imperative_of_a_request_is_not_what_it_asks_about() -> None:
    """ "Citez" would find "cité", "Nommez" "nommé": the verb opening a request is no term."""
    listed = Question.read("Citez les ateliers ouverts par la Filature.")
    assert listed.is_list and listed.focus == ("ateli", "ouvert")
    assert listed.terms == ("ateli", "ouvert", "filatur") and listed.names == ("filatur",)
    for asked in ("Énumérez les ateliers ouverts par la Filature.",
                  "nommez les ateliers ouverts par la filature",
                  "Et donnez-moi les ateliers ouverts par la Filature."):
        assert Question.read(asked).terms == listed.terms, asked  # typed: no names, same terms
    assert without_request("Donnez le nom du directeur.") == "le nom du directeur."
    # a past participle inside the question stays a term
    assert "nomm" in Question.read("Qui a été nommé à la tête de la Filature ?").terms
    assert without_request("Quelle cité accueille la Filature ?") == (
        "Quelle cité accueille la Filature ?")
    # in English too: "name" would be glossed "nom", "nommé", "baptisé"
    named = Question.read("Name the workshops opened by the Filature.")
    assert named.is_list and "nom" not in named.terms and "ateli" in named.terms
    assert without_request("Tell me who runs the Filature.") == "who runs the Filature."


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
        # the topic head reads e5's question vectors: only its fit has one
        assert (scorer.topic is not None) == (name == E5_MODEL_NAME)
        if scorer.topic is not None:
            again = Topic.from_dict(scorer.topic.to_dict())
            assert again.to_dict() == scorer.topic.to_dict()
            assert scorer.topic.support.shape[1] == 384 and scorer.topic.threshold >= 0.0
            vector = np.ones(384, dtype=np.float32) / np.sqrt(384)
            assert again.score(vector) == scorer.topic.score(vector)
            assert "topic" in scorer.about
    rows = [{"own": 1.0, "slot": 1.0}, {"own": 0.0, "slot": 0.0}]
    p = picked(default_scorer(E5_MODEL_NAME).pick, rows)
    assert abs(sum(p) - 1.0) < 1e-9 and p[0] > p[1]


@pytest.mark.parametrize(("question", "kind"), [
    ("Quel élu préside le syndicat mixte ?", "person"),
    ("Quelle ancienne directrice artistique pilote le laboratoire ?", "person"),
    ("Which former director runs the lab?", "person"),
    ("Quelle subvention la métropole a-t-elle accordée ?", "money"),
    ("Quel loyer paient les startups ?", "money"),
    ("Quelle jeune pousse conçoit des capteurs ?", "name"),
])
def test_the_kind_asked_by_the_noun_of_the_question(question: str, kind: str) -> None:
    assert Question.read(question).kind == kind


@pytest.mark.parametrize(("question", "kind", "attribute"), [
    ("How many young companies joined the program?", "number", "entrepris"),
    ("How many members does the cooperative have?", "number", "membr"),
    ("How much money did the startup raise when it left the program?", "money", None),
    ("What is Terrebleue's budget for its first year?", "money", None),
    ("Quel est l'apport de la Région au budget du cluster ?", "money", None),
    ("Quelle est la longueur de la piste ?", "number", None),
])
def test_english_counts_and_kinds_of_figures(question: str, kind: str,
                                            attribute: str | None) -> None:
    """What "how many" counts is the attribute of an English question (its French term); a
    question asking an amount, a length, a sum of money is read as such, "when" after "how
    much" included."""
    view = Question.read(question)
    assert view.kind == kind
    if attribute is not None or view.english:
        assert view.attribute == attribute


def test_a_typed_question_finds_its_names_in_the_articles() -> None:
    """Typed without capitals, a question shows no names; its words that the retrieved articles
    write with a capital inside a sentence become its names (what the answer checks)."""
    q = Question.read("qui dirige le composteur a caen")
    assert q.typed and q.names == ()
    articles = ["Le Composteur, laboratoire du musée de Caen, accueille des startups. À Caen, "
                "le Composteur est dirigé par Maëlys Hatt. Elle dirige aussi un atelier."]
    named = q.with_names_from(articles)
    assert named.names == ("caen", "composteur") and "dirig" in named.focus
    assert "composteur" not in named.focus
    careful = Question.read("Qui dirige le Composteur à Caen ?")
    assert careful.with_names_from(articles) is careful  # a careful question is unchanged
    assert set(careful.names) == set(named.names)


def test_a_typed_question_names_the_places_it_mentions() -> None:
    """The places a typed question names (a town of France, a country, a city of the world in
    French) are its `places` (what the answer's articles must mention), whether or not the
    retrieved articles write them; a town whose word the articles write in lower case ("qu'une
    startup vienne") is a common word there, and one whose name the project's articles use as
    a common word ("tours") is not in the list."""
    articles = ["Le Composteur, à Caen, attend qu'une startup vienne s'y installer."]
    q = Question.read("qui dirige la french tech de clermont-ferrand")
    assert q.with_names_from(articles).places == tuple(analyze("clermont-ferrand"))
    assert places_in("la french tech de clermont ferrand") == ["clermont ferrand"]
    assert Question.read("combien de startups a vienne").with_names_from([]).places == tuple(
        analyze("vienne"))
    # the articles write "vienne" as a verb: no town there
    assert Question.read("combien de startups a vienne").with_names_from(articles).places == ()
    assert Question.read("combien de tours de table").with_names_from([]).places == ()
    assert Question.read("combien a leve la rochelle").with_names_from([]).places == tuple(
        analyze("la rochelle"))
    # abroad, in French; an elided article or a hyphen does not hide the name
    assert places_in("qui dirige l'accelerateur de tallinn, en estonie") == ["tallinn",
                                                                             "estonie"]
    assert places_in("l'incubateur de tel-aviv et celui de lisbonne") == ["tel aviv",
                                                                          "lisbonne"]
    assert places_in("une startup suisse vend des chaises") == []  # an adjective there
    # "tel" is a common word of the articles, "aviv" is not: the place stays
    assert Question.read("combien a investi l'incubateur de tel aviv").with_names_from(
        ["Un tel projet est rare."]).places == tuple(analyze("tel aviv"))
    careful = Question.read("Qui dirige la French Tech de Limoges ?")
    assert careful.with_names_from(articles).places == ()  # its names are written


@pytest.mark.parametrize(("question", "sentence", "short"), [
    # a person, not the company named beside the same verb
    ("Qui dirige le laboratoire ?",
     "Son prédécesseur était parti diriger Feuillets de Normandie ; Noémie Pélissard dirige "
     "désormais le laboratoire.", "Noémie Pélissard"),
    # minutes are a duration
    ("Combien de temps dure la prise d'images ?",
     "Pendant quarante minutes, la machine prend des centaines d'images.", "quarante minutes"),
    # a figure without the unit asked comes far behind one with it
    ("Quelle est la surface du Grand Hangar ?",
     "Le Grand Hangar réunit trois écoles et une soixantaine d'entreprises sur 21 500 m².",
     "21 500 m²"),
    ("Combien d'entreprises le bâtiment pourra-t-il accueillir ?",
     "Le bâtiment offrira 1 980 m² : des bureaux pour une quinzaine d'entreprises.",
     "une quinzaine d'entreprises"),
    # a place described rather than named: the former building, to the end of its clause
    ("Dans quel bâtiment le Carrelet est-il installé ?",
     "Ouvert en janvier 2021 dans une ancienne corderie du port de pêche, le Carrelet "
     "accompagne dix-neuf jeunes entreprises.", "une ancienne corderie du port de pêche"),
    # a figure in another unit than the count asked, a length of time for an age
    ("Combien de salariés compte l'entreprise Volubilis ?",
     "Ce chef d'entreprise de 51 ans dirige Volubilis, qui compte 40 personnes.",
     "40 personnes"),
    ("Quel âge a la directrice ?",
     "La directrice a travaillé pendant huit ans dans un laboratoire ; elle a 45 ans.", "45 ans"),
    # a name alone at the head of its sentence, described right after it; not an adverb
    ("Quelle startup fabrique des ruches connectées ?",
     "Abeillon, une startup née il y a deux ans, fabrique des ruches connectées.",
     "Abeillon"),
    ("Quelle startup a reçu le prix du jury ?",
     "Ensuite, Verrine a reçu le prix du jury, doté de 5 000 euros.", "Verrine"),
    ("Quelle entreprise conçoit les capteurs ?",
     "Parmi elles : Sondaxe, qui conçoit les capteurs des serres.", "Sondaxe"),
    # the name after a sentence's first word ("Originaire de Blois" -> "Blois")
    ("De quelle ville vient la directrice ?",
     "Originaire de Vierzon, elle a dirigé un musée avant de rejoindre le laboratoire.",
     "Vierzon"),
    # a place with its common noun ("la vallée d'Aspe", "les halles de la Minoterie")
    ("Où se tiendra le salon ?",
     "Le salon se tiendra en mars dans les halles de la Minoterie.", "halles de la Minoterie"),
    # a length or a temperature asked: a figure in its unit
    ("Quelle est la longueur de la piste ?",
     "Le site compte 14 boxes et une piste de 650 mètres.", "650 mètres"),
    ("À quelle température chauffe le four ?",
     "Le four de 3 mètres de long chauffe à 1 200 degrés.", "1 200 degrés"),
    # "combien d'argent" asks an amount
    ("Combien d'argent les douze startups ont-elles levé ?",
     "Les douze startups, soit 40 emplois, ont levé 3,1 millions d'euros.",
     "3,1 millions d'euros"),
])
def test_short_answer_rules_of_kinds(question: str, sentence: str, short: str) -> None:
    assert short_answer(Question.read(question), sentence) == short


def test_the_attribute_asked_its_synonyms_and_the_figures_that_count_it() -> None:
    from assistant.text.analysis import analyzed
    from assistant.text.facts import names_a_body, opens_with_first_name
    from assistant.text.kinds import attribute_term
    from assistant.text.question import attribute_matches, matches
    from assistant.text.sentences import near_figures

    # a number before the noun, "combien a coûté le ..."
    assert attribute_term("Quelles sont les cinq entreprises partenaires ?") == "entrepris"
    assert attribute_term("Combien a coûté le scanner du musée ?") == "scann"
    assert attribute_term("Combien va coûter l'aménagement du site ?") == "amenag"
    # figures in letters, compound or fractions, count the words beside them
    assert "entrepris" in near_figures("L'incubateur compte vingt-deux jeunes entreprises.")
    assert "budget" in near_figures("La Région finance un tiers du budget.")
    # synonyms serve the attribute, and the focus words the pick reads in a sentence
    found = analyzed("La société emploie 320 personnes et compte 45 emplois.")
    assert not matches("salari", found) and attribute_matches("salari", found)
    assert not attribute_matches("habit", found)
    focus = pair_features(Question.read("Citez les startups lauréates."), base={},
                          sentence="Trois jeunes pousses ont été primées.", context="",
                          title="", ordinal=3, rank=0, best_dense=0.0,
                          article_terms=frozenset())["focus"]
    assert focus == 0.5  # "startups" by "jeunes pousses", not "lauréates"
    assert opens_with_first_name("Marie-Laure Vie") and opens_with_first_name("MICHEL HEINRICH")
    assert not opens_with_first_name("Région Normandie")
    assert names_a_body("Région Normandie") and names_a_body("Feuillets de Normandie")
    assert not names_a_body("Anne de Bretagne") and not names_a_body("Wafâa Maadnous")


def test_the_weather_is_no_length_of_time() -> None:
    assert implied_unit("Quel temps fera-t-il à Perpignan ce week-end ?") is None
    assert implied_unit("Combien de temps dure le programme ?").search("quarante minutes")


def test_a_place_the_question_describes_is_no_answer() -> None:
    sentence = "Le fab lab est installé dans une ancienne corderie du port, quartier Saint-Nicolas."
    question = "Dans quel quartier se trouve l'ancienne corderie du port ?"
    asked = [s.text for s in fact_spans("place", sentence, question)]
    assert asked == ["quartier Saint-Nicolas"]
    assert "une ancienne corderie du port" in [
        s.text for s in fact_spans("place", sentence, "Où est installé le fab lab ?")]


def test_an_enumeration_in_prose_counts_its_items() -> None:
    """A list question is answered by a sentence naming its items in prose as well as by a
    bulleted list: `series_length` counts them, the `list_series` feature reads it for list
    questions only."""
    rooms = ("On y trouve un atelier de numérisation, une salle d'immersion, des bureaux pour une "
             "douzaine de startups et un petit studio de son.")
    assert series_length(rooms) == 4
    assert series_length("Agriculteurs, retraités, lycéens ou infirmières libérales, ils "
                         "essaient les objets chez eux.") == 4
    assert series_length("Le laboratoire fonctionne avec un budget annuel de 680 000 euros.") == 0
    assert series_length("Il est arrivé en mai, et il a tout changé depuis, selon elle.") == 0
    # the last item runs on (where it ends cannot be told); a comma before "et" ends the one
    # before it; "ainsi que" introduces a last item too
    assert series_length("Le site abritera un incubateur, un hôtel d'entreprises et un Fab Lab "
                         "d'ores et déjà financé dans le cadre du contrat de plan.") == 3
    assert series_length("Le Mans Métropole a apporté 3 millions d'euros, la Région des Pays de "
                         "la Loire 2 millions, et l'État a accordé une subvention.") == 3
    assert series_length("Le bâtiment comprendra un showroom, une salle de formation, une "
                         "cuisine ainsi que huit bureaux.") == 4
    assert series_length("Il a vu la ville, puis il est parti.") == 0

    def feature(question: str, sentence: str) -> float:
        return pair_features(Question.read(question), base={}, sentence=sentence, context="",
                             title="", ordinal=3, rank=0, best_dense=0.0,
                             article_terms=frozenset())["list_series"]

    assert feature("Quels équipements le laboratoire propose-t-il ?", rooms) == 1.0
    assert feature("Quel est le budget du laboratoire ?", rooms) == 0.0
