"""Deterministic ids: the same parts always give the same id, in the documented shapes."""

from __future__ import annotations

import pytest

from sandbox.core.ids import _BASE36, cuid, digest, hex_token, uuid_for


def reference_cuid(*parts: object, length: int = 24) -> str:
    """The definition: a letter from the digest modulo 26, then base-36 digits, lowest first."""
    n = int.from_bytes(digest(*parts), "big")
    chars = [_BASE36[10 + n % 26]]
    n //= 26
    while len(chars) < length:
        n, r = divmod(n, 36)
        chars.append(_BASE36[r])
    return "".join(chars)


@pytest.mark.parametrize("length", [0, 1, 2, 3, 7, 8, 9, 16, 24, 25, 32, 60])
def test_cuid_follows_its_definition(length: int) -> None:
    for i in range(400):
        parts = (1234, f"wbk_{i}", "inboxapp-job", i)
        assert cuid(*parts, length=length) == reference_cuid(*parts, length=length)


def test_known_ids_do_not_change() -> None:
    # Ids already handed out (tests, fixtures, users' recordings) must stay what they were.
    assert cuid(1234, "wbk_docs", "inboxapp-job", 1) == "cup2zd31kpf4l9y1nrattlg6"
    assert len(cuid("x")) == 24 and cuid("x")[0].isalpha()
    assert len(hex_token("x", length=24)) == 24
    assert uuid_for("x")[14] == "4"
