"""Articles and questions shared by the reliability tests (crash, concurrency, corrupt index)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: An article the seed corpus does not hold; its words ("Kerlouan", "gyrolabe") appear nowhere else.
NEW_SOURCE = "pole-quantique-kerlouan.txt"
NEW_ARTICLE = """Mis à jour le 12/03/2024
Le pôle quantique de Kerlouan ouvre ses portes aux start-up bretonnes

À Kerlouan, dans le Finistère, un ancien hangar agricole de 3 200 m² accueille depuis mars le pôle
quantique de Kerlouan. Sa directrice, Maëlle Guirriec, y réunit douze jeunes entreprises qui
conçoivent des capteurs quantiques pour la navigation maritime.

Le projet a coûté 8,5 millions d'euros, financés par la région Bretagne, l'État et un fonds
d'investissement brestois. « Nous voulions prouver qu'un territoire rural peut attirer la
recherche de pointe », explique Maëlle Guirriec.

Le premier produit sorti des ateliers, un gyrolabe à atomes froids, équipe déjà deux navires
océanographiques. Les fondateurs comptent recruter quarante ingénieurs d'ici à 2026 et ouvrir un
laboratoire commun avec l'université de Bretagne occidentale.
"""
NEW_QUESTION = "Qui dirige le pôle quantique de Kerlouan ?"
NEW_WORD = "Guirriec"

#: Questions about the seed articles: their top passages must not move when an index is damaged,
#: crashed into or updated with an unrelated article.
SEED_QUESTIONS = (
    "Qui dirige la Louvre Lens Vallée depuis mai 2015 ?",
    "Quelle est la surface de la Serre numérique de Valenciennes ?",
    "Qu'est-ce que Lorntech ?",
)


def top_passages(retriever: Any, questions: tuple[str, ...] = SEED_QUESTIONS, k: int = 5
                 ) -> list[list[tuple[str, int, int, str]]]:
    """(source, start, end, text) of the k best passages for each question, best first."""
    return [[(p.source, p.start, p.end, p.text) for p in retriever.search(q, k)]
            for q in questions]


def add_new_article(corpus_dir: Path) -> Path:
    path = corpus_dir / NEW_SOURCE
    path.write_text(NEW_ARTICLE, encoding="utf-8")
    return path
