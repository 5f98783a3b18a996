"""Reproducible synthetic French news articles about the digital-innovation ecosystem.

Article `i` of seed `s` is always the same text (its own `random.Random(f"{s}-{i}")`), and no two
articles are equal: each names its own organisation and carries its number. Used by the speed
benchmark (corpora of 5 to 5,000 articles) and the bench smoke tests; no network, no data set.

    python bench/synthetic.py DIR --articles 500 [--seed 0] [--sentences 3 6]
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

CITIES = (
    "Lille", "Lyon", "Nantes", "Bordeaux", "Toulouse", "Montpellier", "Rennes", "Grenoble",
    "Strasbourg", "Nancy", "Metz", "Valenciennes", "Lens", "Brest", "Dijon", "Clermont-Ferrand",
    "Marseille", "Nice", "Angers", "Tours", "Rouen", "Caen", "Limoges", "Poitiers", "Besançon",
)
KINDS = (
    "incubateur", "cluster numérique", "accélérateur", "tiers-lieu", "fablab",
    "pôle de compétitivité",
    "campus numérique", "living lab", "pépinière d'entreprises", "hub d'innovation",
)
SECTORS = (
    "l'intelligence artificielle", "la cybersécurité", "l'e-santé", "le jeu vidéo", "la robotique",
    "l'agritech", "la fintech", "l'industrie 4.0", "les objets connectés", "la réalité virtuelle",
    "la mobilité durable", "l'edtech", "le cloud souverain", "la blockchain", "la greentech",
)
FIRST = (
    "Camille", "Julien", "Sophie", "Karim", "Nathalie", "Thomas", "Inès", "Mathieu", "Léa",
    "Olivier", "Amina", "Pierre", "Claire", "Yannick", "Élodie", "Sébastien", "Chloé", "Rachid",
)
LAST = (
    "Martin", "Bernard", "Dubois", "Lefèvre", "Moreau", "Laurent", "Garnier", "Rousseau", "Benali",
    "Fontaine", "Chevalier", "Mercier", "Blanchard", "Guérin", "Perrin", "Morel", "Nguyen", "Roux",
)
PARTNERS = (
    "la Région", "la métropole", "la CCI", "Bpifrance", "l'Union européenne", "l'université",
    "la French Tech locale", "une école d'ingénieurs", "un grand groupe industriel",
)
MONTHS = (
    "janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre",
    "octobre", "novembre", "décembre",
)
SYLLABLES = ("no", "va", "ti", "lo", "ra", "mé", "ka", "zu", "pi", "xo", "bel", "tek", "lia", "dor")

SENTENCES = (
    "{org} accompagne {n_startups} start-up spécialisées dans {sector} à {city}.",
    "Dirigé par {person} depuis {month} {year}, {org} a levé {amount} millions d'euros.",
    "Le projet est soutenu par {partner}, qui finance {share} % du budget de fonctionnement.",
    "Les locaux de {org} s'étendent sur {surface} m² au cœur de {city}.",
    "« Nous voulons faire de {city} une référence pour {sector} », explique {person}.",
    "Depuis son ouverture, le lieu a accueilli {visitors} visiteurs et {events} événements.",
    "Un programme d'accélération de {weeks} semaines sera proposé aux porteurs de projets.",
    "{org} compte déjà {members} membres, dont des PME, des laboratoires et des écoles.",
    "L'inauguration officielle a eu lieu le {day} {month} {year} en présence des élus locaux.",
    "{person} rappelle que {share} % des entreprises hébergées exportent déjà en Europe.",
    "Un appel à projets doté de {amount} millions d'euros cible {sector} et ses usages.",
    "La structure prévoit de créer {jobs} emplois d'ici {later}.",
)


def _name(rng: random.Random) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))).capitalize()


def synthetic_article(i: int, *, seed: int = 0, sentences: tuple[int, int] = (3, 6)) -> str:
    """The text of article `i`: a date line, a title line, then 1-2 short paragraphs."""
    rng = random.Random(f"{seed}-{i}")
    city = rng.choice(CITIES)
    org = f"{rng.choice(KINDS).capitalize()} {_name(rng)} n°{i}"
    year = rng.randint(2012, 2024)
    values = {
        "org": org, "city": city, "sector": rng.choice(SECTORS), "year": year,
        "person": f"{rng.choice(FIRST)} {rng.choice(LAST)}", "partner": rng.choice(PARTNERS),
        "month": rng.choice(MONTHS), "day": rng.randint(1, 28), "later": year + rng.randint(2, 6),
        "n_startups": rng.randint(5, 120), "amount": rng.randint(1, 60),
        "share": rng.randint(5, 80),
        "surface": rng.randint(3, 200) * 100, "visitors": rng.randint(2, 90) * 1000,
        "events": rng.randint(10, 400), "weeks": rng.randint(6, 26),
        "members": rng.randint(20, 600),
        "jobs": rng.randint(10, 900),
    }
    count = rng.randint(*sentences)
    body = [s.format(**values) for s in rng.sample(SENTENCES, k=min(count, len(SENTENCES)))]
    cut = max(1, len(body) // 2)
    title = f"{org} : {city} mise sur {values['sector']}"
    date = f"Mis à jour le {values['day']:02d}/{MONTHS.index(values['month']) + 1:02d}/{year}"
    return "\n".join([date, title, " ".join(body[:cut]), "", " ".join(body[cut:])]).strip() + "\n"


def write_corpus(
    directory: Path, n: int, *, seed: int = 0, start: int = 0, sentences: tuple[int, int] = (3, 6)
) -> list[Path]:
    """Write articles `start .. start+n-1` as `article-000123.txt` files; returns their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(start, start + n):
        path = directory / f"article-{i:06d}.txt"
        path.write_text(synthetic_article(i, seed=seed, sentences=sentences), encoding="utf-8")
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--articles", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sentences", type=int, nargs=2, default=(3, 6), metavar=("MIN", "MAX"))
    args = parser.parse_args()
    paths = write_corpus(args.directory, args.articles, seed=args.seed,
                         sentences=tuple(args.sentences))
    print(f"{len(paths)} articles written to {args.directory}")


if __name__ == "__main__":
    main()
