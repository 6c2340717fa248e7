"""Cron: next_after against a brute-force minute walker, and the standard semantics on known
dates (names, steps, ranges, day 7, the day-of-month/day-of-week OR rule, month ends, leap
days)."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loopwright.errors import InvalidInput
from loopwright.loop.cron import next_after, parse


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() * 1000)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M")


@functools.cache
def _field_ok(value: int, field: str, low: int, names: tuple[str, ...] = ()) -> bool:
    """Whether ``value`` is in the cron field ``field``, read independently of the module."""
    for part in field.split(","):
        body, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1

        def num(text: str) -> int:
            lowered = text.lower()
            return names.index(lowered) + low if lowered in names else int(text)

        if body == "*":
            first, last = low, 10**6
        elif "-" in body:
            a, b = body.split("-")
            first, last = num(a), num(b)
        else:
            first = num(body)
            last = 10**6 if step_text else first
        if first <= value <= last and (value - first) % step == 0:
            return True
    return False


_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def _brute_matches(expr: str, moment: datetime) -> bool:
    minute, hour, dom, month, dow = expr.split()
    weekday = moment.isoweekday() % 7
    dow_ok = _field_ok(weekday, dow, 0, _DAYS) or (weekday == 0 and _field_ok(7, dow, 0, _DAYS))
    dom_ok = _field_ok(moment.day, dom, 1)
    if not dom.startswith("*") and not dow.startswith("*"):
        day_ok = dom_ok or dow_ok
    else:
        day_ok = dom_ok and dow_ok
    return (
        _field_ok(moment.minute, minute, 0)
        and _field_ok(moment.hour, hour, 0)
        and _field_ok(moment.month, month, 1, _MONTHS)
        and day_ok
    )


def _brute_next(expr: str, after_ms: int, limit_days: int = 800) -> int | None:
    moment = datetime.fromtimestamp(after_ms // 60_000 * 60, UTC) + timedelta(minutes=1)
    for _ in range(limit_days * 1440):
        if _brute_matches(expr, moment):
            return int(moment.timestamp()) * 1000
        moment += timedelta(minutes=1)
    return None


CASES = [
    "* * * * *",
    "*/15 * * * *",
    "0 3 * * 1",
    "0 0 1 * mon",  # OR: the 1st, and every Monday
    "30 12 31 * *",  # only months with 31 days
    "0 0 29 2 *",  # leap days
    "0 0 29 2 1",  # OR: Feb 29 or any Monday
    "5-10/2 1,13 * jan-mar,dec *",
    "0 0 * * 7",  # 7 is Sunday
    "0 0 * * 5-7",  # Friday to Sunday
    "0 12 1-7 * fri",  # OR, not "first Friday": cron's famous trap
    "0 0 */10 * *",
    "45 23 28-31 2 *",
    "0 6/5 * * *",  # 6, 11, 16, 21
    "59 23 31 12 *",
]
STARTS = [
    "2026-12-05T07:28",
    "2027-02-28T23:59",
    "2028-02-28T23:59",  # 2028 is a leap year
    "2026-04-30T23:59",
    "2026-12-31T23:59",
    "2099-12-31T12:00",  # 2100 is not a leap year
]


@pytest.mark.parametrize("expr", CASES)
@pytest.mark.parametrize("start", STARTS)
def test_next_after_equals_the_brute_force_walker(expr: str, start: str) -> None:
    after = _ms(start) + 17_123  # mid-minute: strictly after, on a minute boundary
    expected = _brute_next(expr, after, limit_days=35 if expr != "0 0 29 2 *" else 1)
    got = next_after(expr, after)
    if expected is not None:
        assert _iso(got) == _iso(expected)
    else:  # not within the walked span: what next_after found is a match, and the first
        moment = datetime.fromtimestamp(got / 1000, UTC)
        assert _brute_matches(expr, moment)


@given(
    minute=st.sampled_from(["*", "0", "*/7", "10-20", "1,31,59", "3-50/9"]),
    hour=st.sampled_from(["*", "0", "*/5", "9-17", "23", "4/6"]),
    dom=st.sampled_from(["*", "1", "15", "28-31", "*/3", "31", "29"]),
    month=st.sampled_from(["*", "2", "jan,jul", "*/4", "nov-dec", "4-6"]),
    dow=st.sampled_from(["*", "0", "mon-fri", "7", "sat", "*/2", "1,3"]),
    offset_min=st.integers(0, 4 * 366 * 1440),
)
def test_next_after_property(
    minute: str, hour: str, dom: str, month: str, dow: str, offset_min: int
) -> None:
    expr = f"{minute} {hour} {dom} {month} {dow}"
    try:
        parse(expr)
    except InvalidInput:
        return  # never matches (Feb 31): refused, tested below
    after = _ms("2026-01-01T00:00") + offset_min * 60_000
    got = next_after(expr, after)
    assert got > after and got % 60_000 == 0
    assert _brute_matches(expr, datetime.fromtimestamp(got / 1000, UTC))
    # Nothing in between: walk back up to 3 days minute by minute (beyond, days are skipped
    # by the same rules the match check above verified).
    moment = datetime.fromtimestamp(got / 1000, UTC) - timedelta(minutes=1)
    floor = datetime.fromtimestamp(after / 1000, UTC)
    for _ in range(3 * 1440):
        if moment <= floor:
            break
        assert not _brute_matches(expr, moment), f"{expr}: {moment} matches before {_iso(got)}"
        moment -= timedelta(minutes=1)


def test_known_dates() -> None:
    # 2026-12-05 is a Saturday.
    assert _iso(next_after("0 3 * * 1", _ms("2026-12-05T07:28"))) == "2026-12-07T03:00"
    assert _iso(next_after("0 3 * * MON", _ms("2026-12-07T03:00"))) == "2026-12-14T03:00"
    assert _iso(next_after("0 0 1 * mon", _ms("2026-12-05T00:00"))) == "2026-12-07T00:00"
    assert _iso(next_after("0 0 1 * mon", _ms("2026-12-28T00:00"))) == "2027-01-01T00:00"
    assert _iso(next_after("0 0 29 2 *", _ms("2026-12-05T00:00"))) == "2028-02-29T00:00"
    assert _iso(next_after("0 0 29 2 *", _ms("2096-03-01T00:00"))) == "2104-02-29T00:00"
    assert _iso(next_after("30 12 31 * *", _ms("2026-04-01T00:00"))) == "2026-05-31T12:30"
    assert _iso(next_after("0 0 * * 7", _ms("2026-12-05T07:00"))) == "2026-12-06T00:00"
    assert _iso(next_after("*/15 * * * *", _ms("2026-12-31T23:59"))) == "2027-01-01T00:00"
    assert _iso(next_after("0 6/5 * * *", _ms("2026-12-05T16:00"))) == "2026-12-05T21:00"
    assert _iso(next_after("0 0 L * *".replace("L", "31"), _ms("2027-02-01T00:00"))) == (
        "2027-03-31T00:00"
    )


def test_parse_normalises_spacing_and_reads_names() -> None:
    cron = parse("  0   3 *  * Mon-Fri ")
    assert cron.text == "0 3 * * Mon-Fri"
    assert cron.weekdays == frozenset({1, 2, 3, 4, 5})
    assert parse("0 0 * JAN,dec *").months == frozenset({1, 12})
    assert parse("0 0 * * 5-7").weekdays == frozenset({0, 5, 6})


@pytest.mark.parametrize(
    ("expr", "says"),
    [
        ("0 3 * *", "4 field(s), not 5"),
        ("0 3 * * * *", "6 field(s)"),
        ("", "0 field(s)"),
        ("60 * * * *", "minute 60 is outside 0-59"),
        ("* 24 * * *", "hour 24 is outside 0-23"),
        ("* * 0 * *", "day of month 0 is outside 1-31"),
        ("* * 32 * *", "outside 1-31"),
        ("* * * 13 *", "month 13 is outside 1-12"),
        ("* * * * 8", "day of week 8 is outside 0-7"),
        ("*/0 * * * *", "step '0' must be a whole number >= 1"),
        ("*/x * * * *", "step 'x'"),
        ("10-5 * * * *", "runs backwards"),
        ("0 0 * * sat-sun", "sun is 0: write sat,sun or 6-7"),
        ("a * * * *", "minute 'a' is not a number or name"),
        ("* * * foo *", "month 'foo'"),
        ("-1 * * * *", "not a number"),
        ("1,,2 * * * *", "not a number"),
        ("0 0 30 2 *", "never matches"),
        ("0 0 31 4,6 *", "never matches"),
    ],
)
def test_bad_expressions_are_refused_with_the_reason(expr: str, says: str) -> None:
    with pytest.raises(InvalidInput, match=says.replace("(", r"\(").replace(")", r"\)")) as info:
        next_after(expr, 0)
    if "never" not in says and "backwards" not in says and "sun is 0" not in says:
        assert "MINUTE HOUR DAY-OF-MONTH MONTH DAY-OF-WEEK" in str(info.value)


def test_an_impossible_day_with_a_weekday_alternative_is_fine() -> None:
    # Feb 30 never happens, but the OR rule makes every Monday of February match.
    assert _iso(next_after("0 0 30 2 mon", _ms("2026-12-05T00:00"))) == "2027-02-01T00:00"
