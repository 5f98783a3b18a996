"""Filters by article and date: which articles a question may be answered from.

    Filters.parse(sources=["serre-numerique-valenciennes"], since="2020-01-01")  # checks formats
    select(filters, {"serre-numerique-valenciennes.txt": "2020-10-01", ...})     # -> Selection

`sources` names articles by their file name relative to the corpus directory
("serre-numerique-valenciennes.txt"), or by that name without its extension; `since` and
`until` are inclusive ISO dates (YYYY-MM-DD). An article without a date never passes a date
filter, and the selection says how many were left out that way. Every check raises
`QuestionError` with a French message (HTTP 422, CLI exit 1).
"""

from __future__ import annotations

import datetime
import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import PurePosixPath

from ..errors import QuestionError

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
MAX_SOURCES = 500  # article names in one filter
CLOSE_NAMES = 3  # suggestions for an unknown article name


def parse_date(value: object, label: str) -> str:
    """`value` as an ISO date string (YYYY-MM-DD), else QuestionError naming `label`."""
    text = value.strip() if isinstance(value, str) else None
    if text is not None and _ISO_DATE.fullmatch(text):
        try:
            return datetime.date.fromisoformat(text).isoformat()
        except ValueError:
            pass
    shown = str(value)[:40]
    raise QuestionError(
        f"Date invalide pour « {label} » : « {shown} ». Format attendu AAAA-MM-JJ "
        "(ex. 2020-10-01)."
    )


@dataclass(frozen=True)
class Filters:
    """Articles named in `sources` (empty: all), dated within [`since`, `until`] (None: open)."""

    sources: tuple[str, ...] = ()
    since: str | None = None
    until: str | None = None

    @classmethod
    def parse(cls, sources: Iterable[str] | None = None, since: str | None = None,
              until: str | None = None) -> Filters:
        """Checked filters (formats only: article names are checked against the index by
        `select`). Blank values mean "no filter"."""
        if isinstance(sources, (str, bytes)) or (
                sources is not None and not isinstance(sources, Iterable)):
            raise QuestionError("Les articles du filtre doivent être une liste de noms de "
                                "fichiers (ex. [\"serre-numerique-valenciennes.txt\"]).")
        names: list[str] = []
        for name in sources or ():
            if not isinstance(name, str):
                raise QuestionError(f"Nom d'article invalide dans le filtre : {name!r}.")
            if name.strip() and name.strip() not in names:
                names.append(name.strip())
        if len(names) > MAX_SOURCES:
            raise QuestionError(f"Trop d'articles dans le filtre ({len(names)}, maximum "
                                f"{MAX_SOURCES}).")
        start = None if since is None or since == "" else parse_date(since, "depuis")
        end = None if until is None or until == "" else parse_date(until, "jusqu'au")
        if start and end and start > end:
            raise QuestionError(f"Période vide : la date de début ({start}) est après la date "
                                f"de fin ({end}).")
        return cls(tuple(names), start, end)

    def __bool__(self) -> bool:
        return bool(self.sources) or self.dated

    @property
    def dated(self) -> bool:
        return self.since is not None or self.until is not None

    def describe(self) -> str:
        """The filter in French, e.g. "articles « a.txt », « b.txt » ; depuis le 2020-01-01"."""
        parts = []
        if self.sources:
            parts.append("articles " + ", ".join(f"« {s} »" for s in self.sources))
        if self.since:
            parts.append(f"depuis le {self.since}")
        if self.until:
            parts.append(f"jusqu'au {self.until}")
        return " ; ".join(parts)

    def admits(self, date: str | None) -> bool:
        """Whether an article dated `date` (None: undated) passes the date bounds."""
        if not self.dated:
            return True
        return date is not None and (self.since or date) <= date <= (self.until or date)


@dataclass(frozen=True)
class Selection:
    """The articles a filter lets through, and how many it left out for lacking a date."""

    sources: tuple[str, ...]
    undated: int = 0

    @property
    def notice(self) -> str | None:
        """What to tell the user beside the results (None: nothing to say)."""
        if not self.undated:
            return None
        if self.undated == 1:
            return "1 article sans date exclu par le filtre de dates"
        return f"{self.undated} articles sans date exclus par le filtre de dates"


def select(filters: Filters, dates: Mapping[str, str | None]) -> Selection:
    """The articles of the index (source -> date) that `filters` lets through. Unknown names
    and a filter that lets nothing through raise QuestionError (with the closest names)."""
    named = list(dates) if not filters.sources else resolve_names(filters.sources, dates)
    kept = tuple(s for s in named if filters.admits(dates[s]))
    undated = sum(1 for s in named if filters.dated and dates[s] is None)
    if not kept:
        why = f" ; {Selection((), undated).notice}" if undated else ""
        raise QuestionError(f"Aucun article ne correspond au filtre ({filters.describe()}{why}) : "
                            "élargissez la période ou choisissez d'autres articles.")
    return Selection(kept, undated)


def resolve_names(names: Iterable[str], known: Iterable[str]) -> list[str]:
    """Each name as the sources it designates: the exact source, else every source whose name
    without extension is `name` (or `name` without its own extension)."""
    sources = sorted(known)
    by_stem: dict[str, list[str]] = {}
    for source in sources:
        by_stem.setdefault(_stem(source), []).append(source)
    found: list[str] = []
    unknown: list[str] = []
    exact = set(sources)
    for name in names:
        matches = [name] if name in exact else by_stem.get(name) or by_stem.get(_stem(name))
        if not matches:
            unknown.append(name)
        found += [m for m in matches or () if m not in found]
    if unknown:
        close = {source for n in unknown for stem in _close(_stem(n), list(by_stem))
                 for source in by_stem[stem]}
        shown = ", ".join(f"« {n} »" for n in unknown)
        hint = ("Articles proches : " + ", ".join(f"« {c} »" for c in sorted(close)) + "."
                if close else "Les noms sont ceux des fichiers du corpus (onglet Corpus du chat).")
        plural = "s" if len(unknown) > 1 else ""
        raise QuestionError(f"Article{plural} inconnu{plural} dans le filtre : {shown}. {hint}")
    return found


def _close(name: str, stems: list[str]) -> list[str]:
    """Up to `CLOSE_NAMES` stems like `name`: those containing it, those whose beginning is
    spelt almost like it ("lorntek" for "lorntech-sillon-lorrain"), then the most similar."""
    folded = name.casefold()
    found = [s for s in stems if folded and folded in s.casefold()]
    found += [s for s in stems if s not in found and difflib.SequenceMatcher(
        None, folded, s[:len(folded)].casefold()).ratio() >= 0.75]
    similar = difflib.get_close_matches(name, stems, n=CLOSE_NAMES, cutoff=0.5)
    return (found + [s for s in similar if s not in found])[:CLOSE_NAMES]


def _stem(name: str) -> str:
    path = PurePosixPath(name)
    return str(path.with_suffix("")) if path.suffix else name
