"""An article's own date: the line that states it, in the French forms news sites use."""

from __future__ import annotations

import pytest

from assistant.ingest.corpus import find_date, find_title, load_corpus, parse_article

from .conftest import SEED_CORPUS


@pytest.mark.parametrize(("head", "expected"), [
    ("Mis à jour le 01/10/2020", "2020-10-01"),
    ("Publié le 05/02/2024", "2024-02-05"),
    ("Publié le mardi 9 avril 2015 à 10h32", "2015-04-09"),
    ("Publiée le 3 juillet 2021.", "2021-07-03"),
    ("Par Ysis Percq, le 9 avril 2015", "2015-04-09"),
    ("Par Ysis Percq | Publié le 09/04/2015 à 10:32", "2015-04-09"),
    ("Ysis Percq, le 9 avr. 2015", "2015-04-09"),
    ("Jeanne Martin — 3 juil. 2021", "2021-07-03"),
    ("Le 1er janvier 2020", "2020-01-01"),
    ("12 mars 2024", "2024-03-12"),
    ("Date : 2015-04-09", "2015-04-09"),
    ("MIS À JOUR LE 3 DÉC. 2019", "2019-12-03"),
    ("Mis à jour le 09.04.2015", "2015-04-09"),
    # the publication date wins over the update date, in either order
    ("Publié le 9 avril 2015 - Mis à jour le 10 avril 2015", "2015-04-09"),
    ("Mis à jour le 10 avril 2015 | Publié le 9 avril 2015", "2015-04-09"),
    ("Publié le 12 septembre 2023 à 08h00, mis à jour le 13 septembre 2023 à 9 h 15",
     "2023-09-12"),
])
def test_date_line_under_the_title(head: str, expected: str) -> None:
    text = f"Un titre d'article\n{head}\n\nLe texte de l'article commence ici."
    assert find_date(text) == expected
    assert find_title(f"{head}\nUn titre d'article\n\nTexte.") == "Un titre d'article"


def test_byline_at_the_end() -> None:
    text = "Un titre\n\nLe texte de l'article.\n\nYsis Percq, le 19 novembre 2014"
    assert find_date(text) == "2014-11-19"


@pytest.mark.parametrize("line", [
    "Le 9 avril 2015, la Serre numérique a été inaugurée.",  # a sentence, not a date line
    "Inauguration le 9 avril 2015.",
    "La serre a été inaugurée le 9 avril 2015.",
    "9 avril 2015 : la Serre numérique est inaugurée",
    "En mai 2015, Wafâa Maadnous reprenait les rênes.",
    "Publié le 31/02/2020",  # no such day
    "Publié le 9 avril 2015 - la suite du texte",
])
def test_dates_inside_the_text_are_not_the_articles_date(line: str) -> None:
    assert find_date(f"Un titre\n{line}\n\nLe texte.") is None


def test_long_lines_are_not_date_lines() -> None:
    assert find_date("Titre\nPar " + "Aa " * 80 + "le 9 avril 2015") is None


def test_front_matter_dates_in_french() -> None:
    raw = "---\ntitle: T\ndate: 9 avr. 2015\n---\nUn texte assez long pour être indexé ici."
    assert parse_article(raw.encode(), "a.md").date == "2015-04-09"


def test_seed_dates() -> None:
    """Only one seed states its date (an update line above its title); the others state none,
    and the dates of their text ("le 9 avril 2015", "En mai 2015") are not taken for one."""
    dates = {a.source: a.date for a in load_corpus(SEED_CORPUS)[0]}
    assert dates == {
        "serre-numerique-valenciennes.txt": "2020-10-01",
        "cluster-numerique-languedoc-roussillon.txt": None,
        "lieux-qui-changent-innovation-france.txt": None,
        "lorntech-sillon-lorrain.txt": None,
        "louvre-lens-vallee-cluster-numerique.txt": None,
    }
