"""Request validation builds its validators once per operation (and media type), and still
checks every request: bad parameters, media types and bodies get their vendor errors."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.http import validation
from tests.conftest import Sandbox

PATH = "/lists/demolist1/import-jobs"
BODY = {"data": {"type": "csv", "content": "username\nalice\nbob\n"}}


def _count_builds(monkeypatch: pytest.MonkeyPatch, cls: type) -> list[Any]:
    built: list[Any] = []
    real = cls.__init__

    def counting(self: Any, *args: Any, **kwargs: Any) -> None:
        built.append(kwargs.get("encoding"))
        real(self, *args, **kwargs)

    monkeypatch.setattr(cls, "__init__", counting)
    return built


def test_validators_are_built_once_per_operation(sb: Sandbox,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    params = _count_builds(monkeypatch, validation.VendorParameterValidator)
    bodies = _count_builds(monkeypatch, validation.VendorJSONBodyValidator)
    # A fresh operation of this test's own app: the list GET, then the create.
    answers = [sb.call("inboxapp", "GET", PATH, params={"limit": n}) for n in (1, 2, 3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    creates = [sb.call("inboxapp", "POST", PATH, json=BODY) for _ in range(3)]
    assert [c.json()["totalCount"] for c in creates] == [2, 2, 2]
    assert len(params) <= 2 and len(bodies) <= 1
    # Another charset is another validator (it decodes the bytes), made once too.
    latin = [sb.call("inboxapp", "POST", PATH, content=b'{"data": {"type": "csv", "content": '
                     b'"username\\nzo\\u00e9\\n"}}',
                     headers={"Content-Type": "application/json; charset=latin-1"})
             for _ in range(2)]
    assert [r.status_code for r in latin] == [200, 200]
    assert bodies.count("latin-1") <= 1


def test_every_request_is_still_checked(sb: Sandbox) -> None:
    assert sb.call("inboxapp", "POST", PATH, json=BODY).status_code == 200
    bad_param = sb.call("inboxapp", "GET", PATH, params={"limit": 0})
    assert bad_param.status_code == 400 and "limit" in bad_param.text
    bad_type = sb.call("inboxapp", "POST", PATH, content=b"username\nalice\n",
                       headers={"Content-Type": "text/csv"})
    assert bad_type.status_code == 415, bad_type.text
    bad_body = sb.call("inboxapp", "POST", PATH, json={"data": {"type": "csv"}})
    assert bad_body.status_code == 400 and "content" in bad_body.text
    assert sb.call("inboxapp", "POST", PATH, json=BODY).status_code == 200
