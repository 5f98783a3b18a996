"""The corpus in time: how many articles each month (or year) holds, undated ones counted apart.

    timeline = Timeline.of(["2020-10-01", "2020-10-15", None, "2021-03-02"])
    timeline.by_month            # {"2020-10": 2, "2021-03": 1}
    timeline.undated             # 1
    timeline.periods("year")     # [("2020", 2), ("2021", 1)]: every period of the span, zeros too
    in_period("2020-10-01", "2020-10")   # True; in_period(None, UNDATED) is True
    valid_period("2020-13")              # "": not a period

What `assistant index status --json` prints (`by_month`, `undated`) and what the Corpus tab's
chart draws come from here; an article's period is read from its ISO date by `period_of` alone.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Scale = Literal["month", "year"]
SCALES: tuple[Scale, ...] = ("month", "year")
UNDATED = "sans-date"  # the period of articles without a date
_ISO = re.compile(r"(\d{4})-(\d{2})-\d{2}")
_PERIOD = re.compile(r"\d{4}(-\d{2})?")


def period_of(date: str | None, scale: Scale = "month") -> str | None:
    """"2020-10-01" -> "2020-10" (month) or "2020" (year); None for no (or no valid) date."""
    match = _ISO.fullmatch(date or "")
    if match is None or not 1 <= int(match[2]) <= 12:
        return None
    return match[1] if scale == "year" else f"{match[1]}-{match[2]}"


def valid_period(text: str) -> str:
    """`text` if it names a period ("YYYY", "YYYY-MM" with a real month, `UNDATED`), else ""
    (a request from a page is checked here before it is shown or used)."""
    if text == UNDATED:
        return text
    if not _PERIOD.fullmatch(text) or (len(text) == 7 and not 1 <= int(text[5:]) <= 12):
        return ""
    return text


def in_period(date: str | None, period: str) -> bool:
    """Whether an article dated `date` (ISO, or None) falls in `period`: "YYYY", "YYYY-MM" or
    `UNDATED`."""
    if period == UNDATED:
        return period_of(date) is None
    if not valid_period(period):
        return False
    return period_of(date, "year" if len(period) == 4 else "month") == period


@dataclass(frozen=True)
class Timeline:
    """Articles per month ("YYYY-MM" -> count, in order, months without articles left out) and
    the number of articles without a date."""

    by_month: dict[str, int]
    undated: int

    @classmethod
    def of(cls, dates: Iterable[str | None]) -> Timeline:
        """The timeline of articles dated `dates` (ISO dates; None: undated)."""
        months: Counter[str] = Counter()
        undated = 0
        for date in dates:
            month = period_of(date)
            if month is None:
                undated += 1
            else:
                months[month] += 1
        return cls(dict(sorted(months.items())), undated)

    @property
    def dated(self) -> int:
        return sum(self.by_month.values())

    def periods(self, scale: Scale) -> list[tuple[str, int]]:
        """(period, articles) for every month or year from the first dated article to the last,
        empty ones included (a chart shows the gaps)."""
        if not self.by_month:
            return []
        first, last = next(iter(self.by_month)), next(reversed(self.by_month))
        if scale == "year":
            counts: Counter[str] = Counter()
            for key, n in self.by_month.items():
                counts[key[:4]] += n
            return [(str(y), counts[str(y)]) for y in range(int(first[:4]), int(last[:4]) + 1)]
        out = []
        year, month = int(first[:4]), int(first[5:])
        while (year, month) <= (int(last[:4]), int(last[5:])):
            key = f"{year:04d}-{month:02d}"
            out.append((key, self.by_month.get(key, 0)))
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        return out

    def default_scale(self, max_months: int = 36) -> Scale:
        """Months while the dated span holds at most `max_months` of them, else years."""
        return "month" if len(self.periods("month")) <= max_months else "year"
