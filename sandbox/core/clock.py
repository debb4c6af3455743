"""Workspace clocks: the only place that reads the wall clock.

A clock is an anchor (a wall instant and the virtual instant it maps to) plus a speed and a
frozen flag. Every operation re-anchors at the current instant, so the virtual time never jumps
backwards when the speed changes or the clock is frozen and resumed.

Virtual instants have microsecond resolution: every instant a clock hands out is rounded to the
microsecond, so repeated small advances of an epoch-sized float do not accumulate rounding
error (a job paced at 20 rows/s must see row 2 exactly 0.1 s after it starts, every time).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime


def wall_now() -> float:
    """Seconds since the epoch, from the machine's clock. Nothing else in the sandbox calls time."""
    return time.time()


def quantise(instant: float) -> float:
    """The instant rounded to the clock's resolution (one microsecond): `round(instant, 6)`,
    the same float, at a third of its cost where that is provably the same."""
    # round(x, 6) goes through a correctly rounded decimal conversion (~1 us; a request and a
    # ticker row each call this several times). Below 2**51 the product x * 1e6 is within
    # 0.125 of the exact one, so when it lies within 0.3 of an integer k the exact product is
    # within 0.425 of k: k is the decimal rounding, and k / 1e6 (one correctly rounded
    # division) is the float round(x, 6) returns. Near a half (a tie to break exactly), past
    # 2**51, for zero (its sign) and for inf or nan, round(x, 6) decides.
    scaled = instant * 1e6
    if -_FAST_BELOW < scaled < _FAST_BELOW:
        whole = round(scaled)
        if whole and -0.3 <= scaled - whole <= 0.3:
            return whole / 1e6
    return round(instant, 6)


_FAST_BELOW = float(2**51)


class ClockError(ValueError):
    """A clock operation that would make time go backwards or stop making sense."""


@dataclass(frozen=True)
class Clock:
    anchor_wall: float
    anchor_virtual: float
    speed: float = 1.0
    frozen: bool = False

    @classmethod
    def starting_at(cls, virtual: float | None, *, frozen: bool = False) -> Clock:
        wall = wall_now()
        start = wall if virtual is None else virtual
        return cls(anchor_wall=wall, anchor_virtual=quantise(start), frozen=frozen)

    def now(self, wall: float | None = None) -> float:
        if self.frozen:
            return self.anchor_virtual
        elapsed = (wall_now() if wall is None else wall) - self.anchor_wall
        # A wall clock stepped backwards (NTP) must not move the virtual clock backwards.
        return quantise(self.anchor_virtual + max(0.0, elapsed) * self.speed)

    def _reanchored(self) -> Clock:
        wall = wall_now()
        return replace(self, anchor_wall=wall, anchor_virtual=self.now(wall))

    def advance(self, seconds: float) -> Clock:
        if seconds < 0:
            raise ClockError("a clock never moves backwards: seconds must be >= 0")
        current = self._reanchored()
        return replace(current, anchor_virtual=quantise(current.anchor_virtual + seconds))

    def freeze(self) -> Clock:
        return replace(self._reanchored(), frozen=True)

    def resume(self) -> Clock:
        return replace(self._reanchored(), frozen=False)

    def with_speed(self, speed: float) -> Clock:
        if not speed > 0:
            raise ClockError("speed must be > 0 (freeze the clock to stop it)")
        return replace(self._reanchored(), speed=speed)

    def as_dict(self) -> dict[str, object]:
        now = self.now()
        return {"now": iso(now), "epoch": round(now, 3), "frozen": self.frozen,
                "speed": self.speed}


def iso(instant: float, *, millis: bool = True) -> str:
    """UTC ISO 8601 with a Z suffix, as InboxApp and most vendors print it."""
    if not millis:
        return _iso(instant, millis=False)
    # Remembered: an answer prints its job's instants, settling stamps every row of a slice
    # with the slice's instant, and profiles repeat their creation date (~3.4 us a call,
    # ~0.15 us remembered). A plain dict, not lru_cache: an import paced row by row prints a
    # new instant per row, and lru_cache's bookkeeping would add ~0.5 us to each of those.
    text = _PRINTED.get(instant)
    if text is None:
        if len(_PRINTED) >= 8192:
            _PRINTED.clear()
        text = _PRINTED[instant] = _iso_millis(instant)
    return text


_PRINTED: dict[float, str] = {}


def _iso_millis(instant: float) -> str:
    """`_iso(instant, millis=True)`, with the part up to the second remembered by second: a
    paced import stamps each row with its own instant (~1 us instead of ~3.4)."""
    # Only for an instant on the clock's microsecond grid (all the clock hands out) before
    # 2106: a float that close to a whole microsecond is rounded to it by datetime and by
    # this product alike (further out, a float's spacing nears half a microsecond).
    micros = round(instant * 1_000_000)
    if not -2**32 < instant < 2**32 or micros / 1_000_000 != instant:
        return _iso(instant, millis=True)
    second, micro = divmod(micros, 1_000_000)
    prefix = _SECONDS.get(second)
    if prefix is None:
        if len(_SECONDS) >= 4096:
            _SECONDS.clear()
        prefix = _SECONDS[second] = _iso(float(second), millis=False)[:-1]
    return f"{prefix}.{micro // 1000:03d}Z"


_SECONDS: dict[int, str] = {}


def _iso(instant: float, *, millis: bool) -> str:
    dt = datetime.fromtimestamp(instant, tz=UTC)
    # Not strftime: glibc does not pad %Y, and a year before 1000 (a client may send
    # 0441-08-11) must still print as the four digits RFC 3339 requires; fields formatted
    # directly are also 3x faster (every job answer prints three or four instants).
    text = (f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:"
            f"{dt.second:02d}")
    return f"{text}.{dt.microsecond // 1000:03d}Z" if millis else text + "Z"


def iso_offset(instant: float) -> str:
    """ISO 8601 with 7 fractional digits and +00:00, as ASP.NET (Which50) prints a
    DateTimeOffset."""
    dt = datetime.fromtimestamp(instant, tz=UTC)
    return f"{dt.year:04d}" + dt.strftime("-%m-%dT%H:%M:%S.") + f"{dt.microsecond:06d}0+00:00"


def parse_iso(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
