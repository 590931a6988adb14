"""Dates and timestamps exactly as PostgreSQL holds them, including those Python's `datetime` cannot.

PostgreSQL dates run from 4713 BC to 5874897 AD and include `infinity` / `-infinity`; Python's stop at years 1 and
9999. asyncpg's default codecs map `date.max` to `infinity` (and back), so a real `9999-12-31` and a real
`infinity` become one value — written wrongly, and invisible to any comparison. These codecs (asyncpg's `tuple`
format: days or microseconds since 2000-01-01) keep every value exact: finite values Python can hold are plain
`date` / `datetime`, the others are `Beyond` values that carry PostgreSQL's own count and print like PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Literal

import asyncpg

Kind = Literal["date", "timestamp", "timestamptz"]

PG_EPOCH = dt.date(2000, 1, 1)
PG_EPOCH_ORDINAL = PG_EPOCH.toordinal()
PG_EPOCH_TS = dt.datetime(2000, 1, 1)
PG_EPOCH_TSTZ = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
DAY_US = 86_400_000_000
_INFINITY = {"date": (2**31 - 1, -(2**31)), "timestamp": (2**63 - 1, -(2**63)), "timestamptz": (2**63 - 1, -(2**63))}
_MIN_ORDINAL, _MAX_ORDINAL = dt.date.min.toordinal(), dt.date.max.toordinal()


class Beyond(str):
    """A date or timestamp outside Python's range (±infinity, a year beyond 9999 or BC): PostgreSQL's text for it,
    with the count PostgreSQL stores (`ticks`: days, or microseconds, since 2000-01-01)."""

    kind: Kind
    ticks: int

    def __new__(cls, kind: Kind, ticks: int) -> Beyond:
        self = super().__new__(cls, _render(kind, ticks))
        self.kind, self.ticks = kind, ticks
        return self

    def as_kind(self, kind: Kind) -> Beyond | dt.date | dt.datetime:
        """The same moment as a value of another temporal type (a timestamp as a date is its day; a timestamp
        without time zone is taken as UTC)."""
        if kind == self.kind:
            return self
        positive, negative = _INFINITY[self.kind]
        if self.ticks in (positive, negative):
            return Beyond(kind, _INFINITY[kind][self.ticks == negative])
        if self.kind == "date":
            return moment(kind, self.ticks * DAY_US)
        if kind == "date":
            return moment("date", self.ticks // DAY_US)
        return moment(kind, self.ticks)


def moment(kind: Kind, ticks: int) -> Any:
    """The Python value for PostgreSQL's count of `kind`: a date/datetime when Python can hold it, else Beyond."""
    if ticks in _INFINITY[kind]:
        return Beyond(kind, ticks)
    if kind == "date":
        ordinal = ticks + PG_EPOCH_ORDINAL
        if _MIN_ORDINAL <= ordinal <= _MAX_ORDINAL:
            return dt.date.fromordinal(ordinal)
        return Beyond(kind, ticks)
    try:
        return (PG_EPOCH_TSTZ if kind == "timestamptz" else PG_EPOCH_TS) + dt.timedelta(microseconds=ticks)
    except OverflowError:
        return Beyond(kind, ticks)


def ticks_of(kind: Kind, value: Any) -> int:
    """PostgreSQL's count for a date, datetime or Beyond written into a column of `kind`."""
    if isinstance(value, Beyond):
        converted = value.as_kind(kind)
        return converted.ticks if isinstance(converted, Beyond) else ticks_of(kind, converted)
    if kind == "date":
        day = value.date() if isinstance(value, dt.datetime) else value
        return day.toordinal() - PG_EPOCH_ORDINAL
    if not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if kind == "timestamptz":
        delta = value.astimezone(dt.UTC) - PG_EPOCH_TSTZ  # a naive value is local time, as asyncpg reads it
    else:
        delta = (value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value) - PG_EPOCH_TS
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


# ---------------------------------------------------------------- text, as PostgreSQL prints it (ISO)

def _civil(days_since_1970: int) -> tuple[int, int, int]:
    """Proleptic Gregorian (year, month, day) of a day count, any year (H. Hinnant's algorithm)."""
    z = days_since_1970 + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day


def _days(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date, any year (inverse of `_civil`)."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468


_DAYS_1970_TO_2000 = 10_957


def _render(kind: Kind, ticks: int) -> str:
    positive, negative = _INFINITY[kind]
    if ticks == positive:
        return "infinity"
    if ticks == negative:
        return "-infinity"
    days, micros = (ticks, 0) if kind == "date" else divmod(ticks, DAY_US)
    year, month, day = _civil(days + _DAYS_1970_TO_2000)
    era = ""
    if year <= 0:  # astronomical year 0 is 1 BC
        year, era = 1 - year, " BC"
    text = f"{year:04d}-{month:02d}-{day:02d}"
    if kind != "date":
        seconds, fraction = divmod(micros, 1_000_000)
        text += f"T{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
        if fraction:
            text += f".{fraction:06d}"
        if kind == "timestamptz":
            text += "+00:00"
    return text + era


_TEXT = re.compile(r"^(\d{4,})-(\d\d)-(\d\d)(?:[ T](\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?"
                   r"(?:([+-])(\d\d)(?::?(\d\d))?(?::?(\d\d))?|Z)?)?( BC)?$")


def parse(kind: Kind, text: str) -> Beyond | dt.date | dt.datetime | None:
    """PostgreSQL's ISO text of a date or timestamp (also `infinity`, BC, years past 9999) as a value of `kind`;
    None when the text is not one."""
    text = text.strip()
    if text in ("infinity", "-infinity"):
        return Beyond(kind, _INFINITY[kind][text == "-infinity"])
    match = _TEXT.match(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, fraction, sign, oh, om, osec, bc = match.groups()
    year_number = int(year)
    if bc:
        year_number = 1 - year_number
    try:
        dt.date(2000, int(month), int(day))  # a real month and day (the year is checked by the count)
    except ValueError:
        return None
    days = _days(year_number, int(month), int(day)) - _DAYS_1970_TO_2000
    if kind == "date":  # as PostgreSQL reads a date: its day, whatever time and zone follow
        return moment(kind, days)
    if hour is None:
        return moment(kind, days * DAY_US)
    micros = ((int(hour) * 60 + int(minute)) * 60 + int(second)) * 1_000_000 + int((fraction or "0").ljust(6, "0"))
    if sign:
        offset = (int(oh) * 3600 + int(om or 0) * 60 + int(osec or 0)) * 1_000_000
        micros -= offset if sign == "+" else -offset
    return moment(kind, days * DAY_US + micros)


# ---------------------------------------------------------------- asyncpg codecs

def _codec(kind: Kind) -> tuple[Any, Any]:
    def encode(value: Any) -> tuple[int]:
        return (ticks_of(kind, value),)

    def decode(value: tuple[int]) -> Any:
        return moment(kind, value[0])

    return encode, decode


async def exact(conn: asyncpg.Connection) -> None:
    """Make `conn` read and write dates and timestamps exactly (an asyncpg `init` hook)."""
    for kind in ("date", "timestamp", "timestamptz"):
        encode, decode = _codec(kind)  # type: ignore[arg-type]
        await conn.set_type_codec(kind, schema="pg_catalog", encoder=encode, decoder=decode, format="tuple")
