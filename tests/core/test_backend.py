"""Backend.workspace: a conflict while settling is retried; one raised by the caller's own
code is the caller's (it ran once and is not run again)."""

from __future__ import annotations

import pytest

from sandbox.core.backend import Backend
from sandbox.core.errors import Conflict
from sandbox.settings import Settings


@pytest.fixture
def backend() -> Backend:
    return Backend(Settings(clock_mode="frozen", background_ticker=False))


def test_a_conflict_raised_by_the_caller_reaches_the_caller(backend: Backend) -> None:
    ran = []
    with (pytest.raises(Conflict, match="concurrently"),
          backend.workspace("wbk_conflict") as (_conn, _ws)):
        ran.append(1)
        raise Conflict("the job was settled concurrently; retry")
    assert ran == [1]


def test_a_conflict_while_settling_is_retried(backend: Backend,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    with backend.workspace("wbk_conflict"):
        pass
    calls = []
    real = Backend.settle

    def flaky(self: Backend, *args: object, **kwargs: object) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise Conflict("the job was settled concurrently; retry")
        real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Backend, "settle", flaky)
    with backend.workspace("wbk_conflict") as (_conn, ws):
        assert ws.id == "wbk_conflict"
    assert len(calls) == 2
