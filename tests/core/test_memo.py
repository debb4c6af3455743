"""per_object: one build per object, never an answer for another object, bounded on request."""

from __future__ import annotations

from typing import Any

from sandbox.core.memo import per_object


def test_one_build_per_object_and_none_shared_between_equal_objects() -> None:
    built: list[Any] = []

    def build(obj: dict[str, int]) -> int:
        built.append(obj)
        return len(built)

    answer = per_object(build)
    a, b = {"x": 1}, {"x": 1}
    assert [answer(a), answer(a), answer(b), answer(b)] == [1, 1, 2, 2]
    assert built == [a, b] and built[0] is a and built[1] is b


def test_a_limit_starts_afresh_and_answers_stay_right() -> None:
    calls = 0

    def build(obj: list[int]) -> int:
        nonlocal calls
        calls += 1
        return sum(obj)

    answer = per_object(build, limit=2)
    objs = [[i] for i in range(5)]
    assert [answer(o) for o in objs] == [0, 1, 2, 3, 4]
    assert [answer(o) for o in objs] == [0, 1, 2, 3, 4]
    assert calls == 10  # two objects held at a time: every round rebuilds
