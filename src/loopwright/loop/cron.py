"""Five-field cron expressions in UTC: ``MINUTE HOUR DAY-OF-MONTH MONTH DAY-OF-WEEK``.

The standard (Vixie cron) semantics: each field is ``*``, a number, a range ``a-b``, a list
``a,b,c`` and any of these with a step (``*/15``, ``1-30/2``, ``5/10`` = ``5-MAX/10``); months
and days of the week may be named (``jan``..``dec``, ``sun``..``sat``; day of week 0 or 7 is
Sunday). When both day fields are restricted (neither starts with ``*``) a day matches if
EITHER matches (``0 0 1 * mon``: the 1st of each month and every Monday), otherwise both must.

Example:
    >>> next_after("0 3 * * 1", 0)  # the first Monday 03:00 UTC after the epoch
    356400000
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .._numbers import is_number
from ..errors import InvalidInput

__all__ = ["CronExpr", "next_after", "parse"]

_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# (name, lowest, highest, names mapped to numbers)
_FIELDS: tuple[tuple[str, int, int, dict[str, int]], ...] = (
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, {name: i + 1 for i, name in enumerate(_MONTHS)}),
    ("day of week", 0, 7, {name: i for i, name in enumerate(_DAYS)}),
)
# The longest gap between two matches of a satisfiable expression is 8 years (Feb 29 skips
# 2100); past that the expression never matches (``0 0 30 2 *``).
_HORIZON = timedelta(days=366 * 9)
_FORMS = (
    "cron expressions have 5 fields, MINUTE HOUR DAY-OF-MONTH MONTH DAY-OF-WEEK (UTC), each "
    "'*', N, A-B, a list A,B or a step */N, A-B/N; months jan-dec, days sun-sat "
    "(e.g. '0 3 * * 1': Mondays 03:00, '*/15 * * * *': every 15 minutes)"
)


@dataclass(frozen=True)
class CronExpr:
    """A parsed expression: the allowed values of each field."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday .. 6 = Saturday
    days_restricted: bool
    weekdays_restricted: bool

    def day_matches(self, moment: datetime) -> bool:
        dom = moment.day in self.days
        dow = (moment.isoweekday() % 7) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return dom or dow
        return dom and dow

    def matches(self, moment: datetime) -> bool:
        """Whether the minute ``moment`` (UTC) is one the expression names."""
        return (
            moment.minute in self.minutes
            and moment.hour in self.hours
            and moment.month in self.months
            and self.day_matches(moment)
        )


def _value(text: str, field: int, expr: str) -> int:
    name, low, high, names = _FIELDS[field]
    lowered = text.lower()
    if lowered in names:
        return names[lowered]
    if not is_number(text):
        raise InvalidInput(f"cron {expr!r}: {name} {text!r} is not a number or name; {_FORMS}")
    value = int(text)
    if not low <= value <= high:
        raise InvalidInput(f"cron {expr!r}: {name} {value} is outside {low}-{high}; {_FORMS}")
    return value


def _field(text: str, field: int, expr: str) -> frozenset[int]:
    name, low, high, _ = _FIELDS[field]
    values: set[int] = set()
    for part in text.split(","):
        body, slash, step_text = part.partition("/")
        step = 1
        if slash:
            if not is_number(step_text) or int(step_text) < 1:
                raise InvalidInput(
                    f"cron {expr!r}: {name} step {step_text!r} must be a whole number >= 1; "
                    f"{_FORMS}"
                )
            step = int(step_text)
        if body == "*":
            start, end = low, high
        elif "-" in body:
            first, _, last = body.partition("-")
            start, end = _value(first, field, expr), _value(last, field, expr)
            if start > end:
                hint = " (sun is 0: write sat,sun or 6-7)" if field == 4 else ""
                raise InvalidInput(
                    f"cron {expr!r}: {name} range {body!r} runs backwards; write it low-high{hint}"
                )
        else:
            start = _value(body, field, expr)
            # ``5/10`` is ``5-MAX/10``, as Vixie cron reads it.
            end = high if slash else start
        values.update(range(start, end + 1, step))
    if field == 4 and 7 in values:  # 7 is Sunday too
        values.discard(7)
        values.add(0)
    return frozenset(values)


def parse(expr: str) -> CronExpr:
    """The expression ``expr``; InvalidInput naming the bad field and the accepted forms, or
    saying it never matches (``0 0 31 2 *``)."""
    if not isinstance(expr, str):
        raise InvalidInput(f"cron expression {expr!r} must be a string; {_FORMS}")
    fields = expr.split()
    if len(fields) != 5 or any(not f for f in fields):
        raise InvalidInput(f"cron {expr!r} has {len(fields)} field(s), not 5; {_FORMS}")
    sets = [_field(text, i, expr) for i, text in enumerate(fields)]
    parsed = CronExpr(
        text=" ".join(fields),
        minutes=sets[0],
        hours=sets[1],
        days=sets[2],
        months=sets[3],
        weekdays=sets[4],
        days_restricted=not fields[2].startswith("*"),
        weekdays_restricted=not fields[4].startswith("*"),
    )
    # A day-of-month that no named month has (Feb 30) and no weekday alternative never fires.
    if not (parsed.days_restricted and parsed.weekdays_restricted):
        longest = max(_month_days(month) for month in parsed.months)
        if min(parsed.days) > longest:
            raise InvalidInput(
                f"cron {expr!r} never matches: no month of {sorted(parsed.months)} has day "
                f"{min(parsed.days)}"
            )
    return parsed


def _month_days(month: int) -> int:
    return 29 if month == 2 else 30 if month in (4, 6, 9, 11) else 31


def next_after(expr: str | CronExpr, after_ms: int) -> int:
    """The first minute (UTC milliseconds) strictly after ``after_ms`` that ``expr`` names."""
    cron = expr if isinstance(expr, CronExpr) else parse(expr)
    start = datetime.fromtimestamp(after_ms // 60_000 * 60, tz=UTC) + timedelta(minutes=1)
    moment, limit = start, start + _HORIZON
    # Skip whole months, days and hours that cannot match before walking minutes, so a search
    # costs at most a few thousand steps whatever the expression.
    while moment < limit:
        if moment.month not in cron.months:
            year, month = (
                (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
            )
            moment = moment.replace(year=year, month=month, day=1, hour=0, minute=0)
        elif not cron.day_matches(moment):
            moment = (moment + timedelta(days=1)).replace(hour=0, minute=0)
        elif moment.hour not in cron.hours:
            moment = (moment + timedelta(hours=1)).replace(minute=0)
        elif moment.minute not in cron.minutes:
            moment += timedelta(minutes=1)
        else:
            return int(moment.timestamp()) * 1000
    raise InvalidInput(f"cron {cron.text!r} never matches (no time within 9 years)")
