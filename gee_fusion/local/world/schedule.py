"""Acquisition calendars of the demo world: Sentinel-2 (5-day revisit with two satellites) and
Sentinel-1 (12-day repeat per satellite, an ascending and a descending relative orbit)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

S2_FIRST = date(2015, 6, 23)
S1_FIRST = date(2014, 10, 3)
ARCHIVE_END = date(2026, 10, 31)
QA60_GAP = (date(2022, 1, 25), date(2024, 2, 28))
"""QA60 cloud bits are empty (masked here) in this period, as in the real archive."""


@dataclass(frozen=True)
class S2Acquisition:
    """One Sentinel-2 acquisition over the world."""

    when: datetime
    spacecraft: str  # 'Sentinel-2A' ...

    @property
    def millis(self) -> int:
        """``system:time_start``."""
        return int(self.when.timestamp() * 1000)

    @property
    def index(self) -> str:
        """``system:index`` in the archive's form (sensing_datatake_tile)."""
        t = self.when.strftime("%Y%m%dT%H%M%S")
        dt = (self.when + timedelta(seconds=3)).strftime("%Y%m%dT%H%M%S")
        return f"{t}_{dt}_T31UCQ"

    @property
    def baseline(self) -> str:
        """PROCESSING_BASELINE."""
        d = self.when.date()
        if d < QA60_GAP[0]:
            return "02.14"
        return "04.00" if d < QA60_GAP[1] else "05.10"


@dataclass(frozen=True)
class S1Acquisition:
    """One Sentinel-1 IW GRD acquisition over the world."""

    when: datetime
    platform: str  # 'A', 'B', 'C'
    passing: str  # 'ASCENDING' / 'DESCENDING'
    relative_orbit: int
    absolute_orbit: int

    @property
    def millis(self) -> int:
        """``system:time_start``."""
        return int(self.when.timestamp() * 1000)

    @property
    def index(self) -> str:
        """``system:index`` in the archive's form."""
        start = self.when.strftime("%Y%m%dT%H%M%S")
        stop = (self.when + timedelta(seconds=25)).strftime("%Y%m%dT%H%M%S")
        take = (self.absolute_orbit * 37) % 0xFFFFFF
        crc = (self.absolute_orbit * 2654435761) % 0xFFFF
        return f"S1{self.platform}_IW_GRDH_1SDV_{start}_{stop}_{self.absolute_orbit:06d}_{take:06X}_{crc:04X}"


def _every(first: date, last: date, step: int) -> list[date]:
    out, d = [], first
    while d <= last:
        out.append(d)
        d += timedelta(days=step)
    return out


@functools.lru_cache(maxsize=4)
def s2_acquisitions(end: date = ARCHIVE_END) -> tuple[S2Acquisition, ...]:
    """Every Sentinel-2 acquisition from the first (2015-06-23) to ``end``, in time order."""
    t = (10, 56, 19)
    acq: list[S2Acquisition] = []
    for d in _every(S2_FIRST, end, 10):
        sat = "Sentinel-2A" if d < date(2025, 1, 21) else "Sentinel-2C"
        acq.append(S2Acquisition(datetime(d.year, d.month, d.day, *t, tzinfo=UTC), sat))
    for d in _every(date(2017, 7, 7), end, 10):  # half a cycle after S2A: 5-day revisit
        acq.append(S2Acquisition(datetime(d.year, d.month, d.day, *t, tzinfo=UTC), "Sentinel-2B"))
    return tuple(sorted(acq, key=lambda a: a.when))


@functools.lru_cache(maxsize=4)
def s1_acquisitions(end: date = ARCHIVE_END) -> tuple[S1Acquisition, ...]:
    """Every Sentinel-1 acquisition from the first (2014-10-03) to ``end``, in time order."""
    acq: list[S1Acquisition] = []
    orbits = (("ASCENDING", 132, (17, 41, 2), 0), ("DESCENDING", 8, (5, 59, 44), 5))
    platforms = (
        ("A", S1_FIRST, end, 0),
        ("B", date(2016, 9, 26), date(2021, 12, 23), 6),
        ("C", date(2025, 5, 20), end, 6),
    )
    for passing, rel, hms, phase in orbits:
        for plat, first, last, offset in platforms:
            start = S1_FIRST + timedelta(days=phase + offset)
            while start < first:
                start += timedelta(days=12)
            for d in _every(start, min(last, end), 12):
                cycle = (d - S1_FIRST).days // 12
                absolute = 2960 + cycle * 175 + rel + {"A": 0, "B": 87, "C": 40}[plat]
                acq.append(
                    S1Acquisition(
                        datetime(d.year, d.month, d.day, *hms, tzinfo=UTC), plat, passing, rel, absolute
                    )
                )
    return tuple(sorted(acq, key=lambda a: a.when))
