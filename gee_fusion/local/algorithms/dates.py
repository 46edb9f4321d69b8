"""Date and DateRange algorithms (UTC unless a time zone is given)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from dateutil.relativedelta import relativedelta

from gee_fusion.errors import EngineError
from gee_fusion.local.algorithms._common import from_datetime, parse_date, time_zone, to_millis
from gee_fusion.local.registry import algorithm
from gee_fusion.local.values import Date, DateRange

_UNITS = ("year", "month", "week", "day", "hour", "minute", "second")
_FIXED_MS = {"week": 7 * 86400000.0, "day": 86400000.0, "hour": 3600000.0, "minute": 60000.0,
             "second": 1000.0}  # fmt: skip
_AVERAGE_MS = {**_FIXED_MS, "year": 365.2425 * 86400000.0, "month": 365.2425 * 86400000.0 / 12}
"""Average unit lengths of the Gregorian calendar (Joda-Time's), for difference and unitRatio."""


def _dt(date: Any, timeZone: str | None = None) -> datetime:
    return datetime.fromtimestamp(to_millis(date) / 1000.0, tz=UTC).astimezone(time_zone(timeZone))


def _unit(unit: str) -> str:
    u = unit.lower().rstrip("s")
    if u not in _UNITS:
        raise EngineError(f"Unknown date unit {unit!r}: use one of {list(_UNITS)}.")
    return u


@algorithm("Date")
def date_new(value: Any, timeZone: str | None = None) -> Date:
    """A date from milliseconds since the epoch, an ISO string, or a Date."""
    if isinstance(value, Date):
        return value
    if isinstance(value, str):
        return parse_date(value, timeZone)
    return Date(float(to_millis(value)))


@algorithm("Date.millis")
def date_millis(date: Date) -> int:
    """Milliseconds since the epoch."""
    return int(to_millis(date))


@algorithm("Date.fromYMD")
def date_from_ymd(year: int, month: int, day: int, timeZone: str | None = None) -> Date:
    """A date from year, month and day."""
    return from_datetime(datetime(int(year), int(month), int(day), tzinfo=time_zone(timeZone)))


def advance(date: Any, delta: float, unit: str, timeZone: str | None = None) -> Date:
    """``date`` moved by ``delta`` units (calendar-aware for months and years)."""
    u = _unit(unit)
    if u in _FIXED_MS:
        return Date(to_millis(date) + float(delta) * _FIXED_MS[u])
    base = _dt(date, timeZone)
    whole = int(delta) if float(delta).is_integer() else None
    if whole is None:
        raise EngineError(f"Date.advance: fractional {u}s ({delta}) are not supported locally.")
    shifted = base + (relativedelta(years=whole) if u == "year" else relativedelta(months=whole))
    return from_datetime(shifted)


algorithm("Date.advance")(advance)


@algorithm("Date.difference")
def date_difference(date: Date, start: Date, unit: str) -> float:
    """``date - start`` in ``unit``: floating point, based on the average length of the unit
    (as Earth Engine documents it; months and years are not calendar-aware)."""
    return (to_millis(date) - to_millis(start)) / _AVERAGE_MS[_unit(unit)]


@algorithm("Date.get")
def date_get(date: Date, unit: str, timeZone: str | None = None) -> int:
    """A calendar field: year, month (1-12), week, day (of month), hour, minute, second."""
    d = _dt(date, timeZone)
    u = _unit(unit)
    return {"year": d.year, "month": d.month, "week": d.isocalendar()[1], "day": d.day,
            "hour": d.hour, "minute": d.minute, "second": d.second}[u]  # fmt: skip


def _unit_start(d: datetime, u: str) -> datetime:
    if u == "year":
        return d.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    if u == "month":
        return d.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if u == "week":
        start = d - timedelta(days=d.weekday())
        return start.replace(hour=0, minute=0, second=0, microsecond=0)
    if u == "day":
        return d.replace(hour=0, minute=0, second=0, microsecond=0)
    if u == "hour":
        return d.replace(minute=0, second=0, microsecond=0)
    if u == "minute":
        return d.replace(second=0, microsecond=0)
    return d.replace(microsecond=0)


@algorithm("Date.getRange")
def date_get_range(date: Date, unit: str, timeZone: str | None = None) -> DateRange:
    """The calendar unit (e.g. month) that contains the date, as [start, end)."""
    u = _unit(unit)
    start = _unit_start(_dt(date, timeZone), u)
    end = advance(from_datetime(start), 1, u, timeZone)
    return DateRange(from_datetime(start).millis, end.millis)


@algorithm("Date.getFraction")
def date_get_fraction(date: Date, unit: str, timeZone: str | None = None) -> float:
    """Elapsed fraction of the calendar unit containing the date."""
    rng = date_get_range(date, unit, timeZone)
    return (to_millis(date) - rng.start) / (rng.end - rng.start)


@algorithm("Date.getRelative")
def date_get_relative(date: Date, unit: str, inUnit: str, timeZone: str | None = None) -> int:
    """0-based index of ``unit`` within ``inUnit`` (e.g. day of year)."""
    u, big = _unit(unit), _unit(inUnit)
    d = _dt(date, timeZone)
    start = _unit_start(d, big)
    if u in _FIXED_MS:
        return int((d - start).total_seconds() * 1000 // _FIXED_MS[u])
    if u == "month":
        return d.month - 1 if big == "year" else 0
    return 0


@algorithm("Date.update")
def date_update(date: Date, year: int | None = None, month: int | None = None, day: int | None = None,
                hour: int | None = None, minute: int | None = None, second: float | None = None,
                timeZone: str | None = None) -> Date:  # fmt: skip
    """Replace calendar fields."""
    d = _dt(date, timeZone)
    d = d.replace(
        year=d.year if year is None else int(year), month=d.month if month is None else int(month),
        day=d.day if day is None else int(day), hour=d.hour if hour is None else int(hour),
        minute=d.minute if minute is None else int(minute),
    )  # fmt: skip
    if second is not None:
        d = d.replace(second=int(second), microsecond=int((float(second) % 1) * 1e6))
    return from_datetime(d)


_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")  # fmt: skip
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def joda_tokens(pattern: str) -> list[tuple[str, str]]:
    """Split a Joda-Time pattern into ``("field", letters)`` and ``("text", literal)`` tokens."""
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "'":
            if pattern.startswith("''", i):
                out.append(("text", "'"))
                i += 2
                continue
            j = pattern.find("'", i + 1)
            j = len(pattern) if j < 0 else j
            out.append(("text", pattern[i + 1 : j]))
            i = j + 1
        elif ch.isascii() and ch.isalpha():
            j = i
            while j < len(pattern) and pattern[j] == ch:
                j += 1
            out.append(("field", pattern[i:j]))
            i = j
        else:
            out.append(("text", ch))
            i += 1
    return out


def _offset(d: datetime, colon: bool) -> str:
    delta = d.utcoffset() or timedelta(0)
    minutes = int(delta.total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    hh, mm = divmod(abs(minutes), 60)
    return f"{sign}{hh:02d}{':' if colon else ''}{mm:02d}"


def _joda_field(letters: str, d: datetime, millis: int) -> str:
    ch, n = letters[0], len(letters)
    if ch in "yYu":
        return f"{d.year % 100:02d}" if n == 2 else f"{d.year:0{n}d}"
    if ch == "x":
        year = d.isocalendar()[0]
        return f"{year % 100:02d}" if n == 2 else f"{year:0{n}d}"
    numbers = {
        "M": d.month, "d": d.day, "D": d.timetuple().tm_yday, "H": d.hour, "k": d.hour or 24,
        "K": d.hour % 12, "h": d.hour % 12 or 12, "m": d.minute, "s": d.second,
        "w": d.isocalendar()[1], "e": d.isoweekday(), "C": d.year // 100,
    }  # fmt: skip
    if ch == "M" and n >= 3:
        return _MONTHS[d.month - 1] if n >= 4 else _MONTHS[d.month - 1][:3]
    if ch == "E":
        return _DAYS[d.weekday()] if n >= 4 else _DAYS[d.weekday()][:3]
    if ch in numbers:
        return f"{numbers[ch]:0{n}d}"
    if ch == "S":
        return f"{millis % 1000:03d}"[:n].ljust(n, "0")
    if ch == "a":
        return "AM" if d.hour < 12 else "PM"
    if ch == "G":
        return "AD" if d.year > 0 else "BC"
    if ch == "Z":
        if n >= 3:
            return str(getattr(d.tzinfo, "key", None) or "UTC")
        return _offset(d, colon=n == 2)
    if ch == "z":
        return str(d.tzname() or "UTC")
    raise EngineError(f"Date.format: unsupported Joda-Time pattern letter {letters!r}.")


def joda_format(d: datetime, pattern: str, millis: int) -> str:
    """Format ``d`` with a Joda-Time pattern (``millis``: the instant, for ``S`` fields)."""
    return "".join(
        text if kind == "text" else _joda_field(text, d, millis) for kind, text in joda_tokens(pattern)
    )


_STRPTIME = {"yyyy": "%Y", "YYYY": "%Y", "uuuu": "%Y", "yy": "%y", "YY": "%y", "MMMM": "%B",
             "MMM": "%b", "EEEE": "%A", "EEE": "%a", "E": "%a", "a": "%p", "Z": "%z",
             "ZZ": "%z"}  # fmt: skip
_STRPTIME_LETTER = {"M": "%m", "d": "%d", "D": "%j", "H": "%H", "h": "%I", "m": "%M",
                    "s": "%S", "S": "%f", "y": "%Y", "Y": "%Y"}  # fmt: skip


def joda_to_strftime(pattern: str) -> str:
    """Translate a Joda-Time pattern into a ``strptime`` format (for ``Date.parse``)."""
    out = []
    for kind, text in joda_tokens(pattern):
        if kind == "text":
            out.append(text.replace("%", "%%"))
        elif text in _STRPTIME:
            out.append(_STRPTIME[text])
        elif text[0] in _STRPTIME_LETTER:
            out.append(_STRPTIME_LETTER[text[0]])
        else:
            raise EngineError(f"Date.parse: unsupported Joda-Time pattern letter {text!r}.")
    return "".join(out)


@algorithm("Date.format")
def date_format(date: Date, format: str | None = None, timeZone: str | None = None) -> str:
    """Format with a Joda-Time pattern (ISO 8601 by default)."""
    d = _dt(date, timeZone)
    if not format:
        return d.strftime("%Y-%m-%dT%H:%M:%S")
    return joda_format(d, format, round(to_millis(date)))


@algorithm("Date.parse")
def date_parse(format: str, date: str, timeZone: str | None = None) -> Date:
    """Parse ``date`` with a Joda-Time pattern."""
    fmt = joda_to_strftime(format)
    try:
        parsed = datetime.strptime(date, fmt)
    except ValueError as exc:
        raise EngineError(f"Date.parse: {date!r} does not match {format!r}.") from exc
    if parsed.tzinfo is not None:
        return from_datetime(parsed)
    return from_datetime(parsed.replace(tzinfo=time_zone(timeZone)))


@algorithm("Date.unitRatio")
def date_unit_ratio(numerator: str, denominator: str) -> float:
    """Ratio of two units' nominal lengths."""
    return _AVERAGE_MS[_unit(numerator)] / _AVERAGE_MS[_unit(denominator)]


# -- DateRange ----------------------------------------------------------------------------


@algorithm("DateRange")
def date_range(start: Any, end: Any = None, timeZone: str | None = None) -> DateRange:
    """[start, end); without ``end``, one millisecond long (a DateRange passes through)."""
    if isinstance(start, DateRange) and end is None:
        return start
    s = date_new(start, timeZone).millis
    e = s + 1 if end is None else date_new(end, timeZone).millis
    return DateRange(s, e)


algorithm("DateRange.start")(lambda dateRange: Date(dateRange.start))
algorithm("DateRange.end")(lambda dateRange: Date(dateRange.end))
algorithm("DateRange.contains")(
    lambda dateRange, other: (
        dateRange.start <= other.start and other.end <= dateRange.end
        if isinstance(other, DateRange)
        else dateRange.contains(to_millis(other))
    )
)
algorithm("DateRange.isEmpty")(lambda dateRange: dateRange.end <= dateRange.start)
algorithm("DateRange.intersects")(
    lambda dateRange, other: dateRange.start < other.end and other.start < dateRange.end
)
algorithm("DateRange.intersection")(
    lambda dateRange, other: DateRange(max(dateRange.start, other.start), min(dateRange.end, other.end))
)
algorithm("DateRange.union")(
    lambda dateRange, other: DateRange(min(dateRange.start, other.start), max(dateRange.end, other.end))
)
algorithm("DateRange.unbounded")(lambda: DateRange(float("-inf"), float("inf")))
algorithm("DateRange.isUnbounded")(
    lambda dateRange: dateRange.start == float("-inf") or dateRange.end == float("inf")
)
