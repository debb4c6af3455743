"""Workspace clocks: real time by default, frozen, advanced, faster, never backwards."""

from __future__ import annotations

import ast
import math
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.core import clock as clock_module
from sandbox.core.clock import Clock, ClockError, iso, iso_offset, parse_iso, quantise, wall_now

T0 = parse_iso("2025-01-15T10:00:00Z")


class FakeWall:
    """Stands in for the machine's clock so that re-anchoring can be checked exactly."""

    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def wall(monkeypatch: pytest.MonkeyPatch) -> FakeWall:
    fake = FakeWall()
    monkeypatch.setattr(clock_module, "wall_now", fake)
    return fake


# ---- real time, nothing injected ----------------------------------------------------------

def test_default_clock_follows_real_time_from_its_creation() -> None:
    c = Clock.starting_at(None)
    assert not c.frozen and c.speed == 1.0
    assert c.anchor_virtual == pytest.approx(c.anchor_wall, abs=1e-6)
    first = c.now()
    second = c.now()
    after = wall_now()
    assert c.anchor_virtual <= first <= second
    # The virtual clock is the wall clock: it has moved exactly as far as the wall has.
    assert second - c.anchor_virtual <= after - c.anchor_wall + 1e-6
    assert first == pytest.approx(after, abs=0.5)


def test_clock_started_at_an_instant_runs_on_from_it() -> None:
    c = Clock.starting_at(T0)
    assert c.anchor_virtual == T0
    elapsed = wall_now() - c.anchor_wall
    assert T0 <= c.now() <= T0 + elapsed + 1e-3
    assert c.now(wall=c.anchor_wall + 90) == T0 + 90


# ---- frozen, advanced, faster (wall injected) ---------------------------------------------

def test_frozen_clock_does_not_move_with_the_wall(wall: FakeWall) -> None:
    c = Clock.starting_at(T0, frozen=True)
    wall.now += 3600
    assert c.now() == T0
    assert c.as_dict() == {"now": "2025-01-15T10:00:00.000Z", "epoch": T0, "frozen": True,
                           "speed": 1.0}


def test_advance_moves_a_frozen_clock_by_exactly_n_seconds(wall: FakeWall) -> None:
    c = Clock.starting_at(T0, frozen=True).advance(90)
    assert c.now() == T0 + 90 and c.frozen
    assert iso(c.now()) == "2025-01-15T10:01:30.000Z"


def test_advance_moves_a_running_clock_and_it_keeps_running(wall: FakeWall) -> None:
    c = Clock.starting_at(T0)
    wall.now += 10
    c = c.advance(50)
    assert c.now() == T0 + 60
    wall.now += 5
    assert c.now() == T0 + 65


def test_speed_runs_the_clock_n_times_faster(wall: FakeWall) -> None:
    c = Clock.starting_at(T0).with_speed(10)
    wall.now += 6
    assert c.now() == T0 + 60


def test_advance_negative_raises_and_zero_is_allowed(wall: FakeWall) -> None:
    c = Clock.starting_at(T0, frozen=True)
    with pytest.raises(ClockError):
        c.advance(-0.001)
    assert c.advance(0).now() == T0


@pytest.mark.parametrize("speed", [0, -1, -0.5])
def test_speed_must_be_positive(wall: FakeWall, speed: float) -> None:
    with pytest.raises(ClockError):
        Clock.starting_at(T0).with_speed(speed)


def test_speed_change_reanchors_without_a_jump(wall: FakeWall) -> None:
    c = Clock.starting_at(T0)
    wall.now += 100
    before = c.now()
    faster = c.with_speed(60)
    assert faster.now() == before == T0 + 100
    wall.now += 1
    assert faster.now() == T0 + 160
    slower = faster.with_speed(0.5)
    assert slower.now() == T0 + 160
    wall.now += 2
    assert slower.now() == T0 + 161


def test_freeze_and_resume_reanchor_without_a_jump(wall: FakeWall) -> None:
    c = Clock.starting_at(T0).with_speed(2)
    wall.now += 10
    frozen = c.freeze()
    assert frozen.now() == T0 + 20
    wall.now += 1000
    assert frozen.now() == T0 + 20
    resumed = frozen.resume()
    assert resumed.now() == T0 + 20 and resumed.speed == 2
    wall.now += 3
    assert resumed.now() == T0 + 26


def test_wall_clock_stepping_back_does_not_move_virtual_time_back(wall: FakeWall) -> None:
    c = Clock.starting_at(T0)
    wall.now += 30
    assert c.now() == T0 + 30
    wall.now -= 60  # NTP correction
    assert c.now() >= T0


def test_never_backwards_over_any_sequence_of_operations(wall: FakeWall) -> None:
    c = Clock.starting_at(T0)
    seen = [c.now()]
    ops = [lambda k: k.with_speed(7), lambda k: k.freeze(), lambda k: k.advance(0.3),
           lambda k: k.resume(), lambda k: k.with_speed(0.1), lambda k: k.advance(12.5),
           lambda k: k.freeze(), lambda k: k.with_speed(3), lambda k: k.resume()]
    for i, op in enumerate(ops):
        wall.now += 0.7 * (i % 3)
        c = op(c)
        seen.append(c.now())
        wall.now += 0.01
        seen.append(c.now())
    assert seen == sorted(seen)


def test_many_small_advances_land_on_the_exact_instant(wall: FakeWall) -> None:
    # 1000 advances of 0.05 s on an epoch-sized float must not accumulate rounding error:
    # paced jobs compare these instants with their row due times.
    c = Clock.starting_at(T0, frozen=True)
    for _ in range(1000):
        c = c.advance(0.05)
    assert c.now() == T0 + 50
    assert quantise(T0 + 1e-7) == T0 and quantise(T0 + 6e-7) == T0 + 1e-6



def _bits(value: float) -> bytes:
    return struct.pack("<d", value)


@settings(max_examples=3000)
@given(st.one_of(
    st.floats(allow_nan=False),
    st.floats(min_value=1.5e9, max_value=2.5e9),  # instants of this century
    st.floats(min_value=-1e4, max_value=1e4),
    # Microsecond grid values and points near half a microsecond (ties to break exactly).
    st.builds(lambda k, d: k / 1e6 + d, st.integers(0, 2**51),
              st.sampled_from([0.0, 5e-7, -5e-7, 4.9999999e-7, 2.5e-7, 1e-9])),
))
def test_quantise_is_round_to_six_places_bit_for_bit(value: float) -> None:
    # Its fast path must give exactly round(x, 6): instants are compared for equality and
    # printed, so one differing bit would move a row's due time or an answer's bytes.
    assert _bits(quantise(value)) == _bits(round(value, 6))


def test_quantise_edge_values() -> None:
    for value in (0.0, -0.0, 1e-7, -1e-7, 5e-7, -5e-7, 1.5e-6, 2.5e-6, 2**51 / 1e6,
                  2**52 / 1e6, 1e18, 1e300, 5e-324, math.inf, -math.inf):
        assert _bits(quantise(value)) == _bits(round(value, 6)), value
    assert math.isnan(quantise(math.nan))
    assert str(quantise(-1e-7)) == "-0.0"  # the sign of zero is round's

# ---- formatting -----------------------------------------------------------------------------

def test_iso_formats() -> None:
    assert iso(T0 + 3.1) == "2025-01-15T10:00:03.100Z"
    assert iso(T0, millis=False) == "2025-01-15T10:00:00Z"
    assert iso_offset(T0 + 0.25) == "2025-01-15T10:00:00.2500000+00:00"
    assert parse_iso(iso(T0 + 1.5)) == T0 + 1.5


@settings(max_examples=2000, deadline=None, database=None)
@given(st.one_of(st.integers(-2**32 * 10**6, 2**32 * 10**6).map(lambda us: us / 10**6),
                 st.integers(-2**31, 2**31).map(lambda s: s + 0.9995),
                 st.floats(-2**34, 2**34, allow_nan=False)))
def test_iso_by_remembered_seconds_prints_what_datetime_prints(instant: float) -> None:
    """Instants on the microsecond grid (any second, any millisecond, the half-millisecond
    and second boundaries) and off it (printed by datetime itself)."""
    assert clock_module._iso_millis(instant) == clock_module._iso(instant, millis=True)


# ---- only clock.py reads the wall clock ----------------------------------------------------

WALL_READERS = {("time", "time"), ("time", "time_ns"), ("time", "monotonic"),
                ("time", "perf_counter"), ("datetime", "now"), ("datetime", "utcnow"),
                ("date", "today"), ("datetime", "today")}


def _wall_reads(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and (node.value.id, node.attr) in WALL_READERS):
            found.append(f"{node.value.id}.{node.attr}")
        if isinstance(node, ast.ImportFrom) and node.module == "time":
            found.extend(f"from time import {a.name}" for a in node.names
                         if ("time", a.name) in WALL_READERS)
    return found


def test_only_the_clock_module_reads_the_wall_clock() -> None:
    root = Path(clock_module.__file__).resolve().parent.parent
    offenders = {}
    for path in sorted(root.rglob("*.py")):
        if path.name == "clock.py" and path.parent.name == "core":
            continue
        reads = _wall_reads(path.read_text())
        if reads:
            offenders[str(path.relative_to(root))] = reads
    assert offenders == {}
    assert _wall_reads((root / "core" / "clock.py").read_text()) == ["time.time"]
