"""What a paced row's resolution and merge remember or shortcut gives exactly what the plain
computation gives: the same values, in the same key order (answers print them in order)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.core.fakes import is_resolvable_username, x_profile
from sandbox.core.imports import _combine, is_fail_value
from sandbox.core.jobs import ResolveContext as Ctx
from sandbox.vendors import inboxapp
from sandbox.vendors.inboxapp import resolve_profile
from tests.core.jobkit import T0


def _combine_plain(current: dict[str, Any], row: dict[str, Any], *, fill_only: bool
                   ) -> dict[str, Any]:
    """_combine as it was written before its shortcut (the reference)."""
    out = dict(current)
    for name, value in row.items():
        if value is None or (isinstance(value, str) and not value):
            continue
        mine = out.get(name)
        if isinstance(mine, dict) and isinstance(value, dict):
            out[name] = _combine_plain(mine, value, fill_only=fill_only)
        elif not fill_only or mine in (None, ""):
            out[name] = value
    return out


_names = st.sampled_from(["a", "b", "c", "d", "columns", "seen"])
_scalars = st.one_of(st.none(), st.just(""), st.text(max_size=3), st.integers(-1, 1),
                     st.booleans(), st.lists(st.integers(0, 2), max_size=2))
_values = st.recursive(_scalars, lambda inner: st.dictionaries(_names, inner, max_size=4),
                       max_leaves=8)
_records = st.dictionaries(_names, _values, max_size=6)


@settings(max_examples=400, deadline=None, database=None)
@given(_records, _records, st.booleans())
def test_combine_is_the_plain_merge_in_values_and_key_order(
        current: dict[str, Any], row: dict[str, Any], fill_only: bool) -> None:
    expected = _combine_plain(current, row, fill_only=fill_only)
    got = _combine(current, row, fill_only=fill_only)
    assert json.dumps(got) == json.dumps(expected)
    assert got is not current


def _resolve_plain(row: dict[str, Any], ctx: Ctx) -> dict[str, Any]:
    """resolve_profile as it was written before it remembered rows (the reference)."""
    username = str(row.get("username") or "").strip().lstrip("@")
    platform_id = str(row.get("platformId") or "").strip()
    for magic in (username, platform_id):
        if is_fail_value(magic):
            return {"platformId": magic}
    columns = {k: v for k, v in row.items() if k not in inboxapp.BUILTIN_COLUMNS}
    if platform_id:
        if not inboxapp._DIGITS.match(platform_id):
            return {"__unresolvable__": f"'{platform_id}' is not a valid platform id"}
        if platform_id.startswith(inboxapp.SUSPENDED_ID_PREFIX):
            return {"__unresolvable__": f"account {platform_id} is suspended"}
        if platform_id.startswith(inboxapp.DELETED_ID_PREFIX):
            return {"__unresolvable__": f"account {platform_id} is deleted"}
        profile = x_profile(ctx.seed, ctx.workspace, platform_id=platform_id, now=ctx.at)
    elif username:
        if not is_resolvable_username(username):
            state = ("suspended" if username.lower().startswith("suspended_") else
                     "deleted" if username.lower().startswith("deleted_") else "invalid")
            return {"__unresolvable__": f"@{username} is {state}"}
        profile = x_profile(ctx.seed, ctx.workspace, username=username, now=ctx.at)
    else:
        return {"__unresolvable__": "row has no username or platformId"}
    for name in ("displayName", "bio", "location", "websiteUrl"):
        if row.get(name):
            profile[name] = row[name]
    if columns:
        profile["columns"] = columns
    return profile


_identifiers = st.sampled_from(["jack", "@Jack", " ann_b ", "suspended_x", "deleted_y", "no way",
                                "fail_rate_limit", "", "12345", "99912", "88877", "12a", 7, 7.0,
                                True, None])
_rows = st.fixed_dictionaries({}, optional={
    "username": _identifiers, "platformId": _identifiers,
    "displayName": st.sampled_from(["", "Ann B", "Jack"]),
    "bio": st.sampled_from(["", "hi"]), "location": st.just("Paris"),
    "custom_x": st.sampled_from(["", "Acme"]), "custom_y": st.just(["a", "b"])})


@settings(max_examples=300, deadline=None, database=None)
@given(st.lists(st.tuples(_rows, st.integers(0, 3), st.floats(0, 10 ** 6)), min_size=1,
                max_size=6))
def test_remembered_resolutions_are_the_plain_ones_at_every_instant(
        calls: list[tuple[dict[str, Any], int, float]]) -> None:
    for row, workspace, later in calls:
        ctx = Ctx(1234 + workspace % 2, f"wbk_memo_{workspace}", round(T0 + later, 6))
        got = resolve_profile(dict(row), ctx)
        assert json.dumps(got) == json.dumps(_resolve_plain(dict(row), ctx))
        got.pop("__unresolvable__", None)  # what decide() does to a failure mark
        got.get("columns", {}).clear()
        assert json.dumps(resolve_profile(dict(row), ctx)) == json.dumps(
            _resolve_plain(dict(row), ctx))


def test_a_number_and_its_text_are_different_rows() -> None:
    ctx = Ctx(1234, "wbk_memo_types", T0)
    answers = [json.dumps(resolve_profile({"platformId": v}, ctx)) for v in ("1", 1, 1.0, True)]
    assert answers == [json.dumps(_resolve_plain({"platformId": v}, ctx))
                       for v in ("1", 1, 1.0, True)]
