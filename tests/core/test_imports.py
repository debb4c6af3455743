"""Import rows in the core: CSV/JSONL reading, row decisions, and every magic test value."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import insert

from sandbox.core import store as t
from sandbox.core.fakes import is_resolvable_username, x_profile
from sandbox.core.imports import (
    ImportPolicy,
    ListState,
    count_csv_rows,
    csv_header,
    decide,
    encode_jsonl,
    fail_message,
    is_fail_value,
    normalise,
    read_rows,
)
from sandbox.core.jobs import Pacing
from sandbox.core.jobs import ResolveContext as Ctx
from sandbox.vendors.inboxapp import resolve_profile
from tests.core.jobkit import EMAIL, T0, VENDOR, Core, conserved, emails

# ---- sources ------------------------------------------------------------------------------


def _read_all(content: str, chunk: int) -> list[dict[str, Any]]:
    header, offset = csv_header(content)
    plan = {"csv_header": header}
    out: list[dict[str, Any]] = []
    while True:
        rows, offset = read_rows("csv", content, offset, chunk, plan)
        if not rows:
            return out
        out.extend(rows)


CSV = ('\ufeffemail,name,note\r\n'
       'a@example.com,Ann,"multi\nline, with comma"\r\n'
       '\r\n'
       ',,\r\n'
       'b@example.com,Bob,plain\r\n'
       'c@example.com,Cy,"quote ""here"""\r\n')


def test_csv_header_strips_the_bom_and_finds_the_first_row() -> None:
    header, offset = csv_header(CSV)
    assert header == ["email", "name", "note"]
    assert CSV[offset:].startswith("a@example.com")
    assert csv_header("a,b\n1,2\n", has_header=False) == (["column1", "column2"], 0)
    assert csv_header("") == ([], 0)


@pytest.mark.parametrize("chunk", [1, 2, 3, 100])
def test_csv_rows_read_in_chunks_equal_one_read_and_the_count(chunk: int) -> None:
    rows = _read_all(CSV, chunk)
    assert [r["email"] for r in rows] == ["a@example.com", "b@example.com", "c@example.com"]
    assert rows[0]["note"] == "multi\nline, with comma" and rows[2]["note"] == 'quote "here"'
    # Blank records (empty lines, lines of empty cells) are not rows: the job total must be
    # exactly the number of rows settling will read, or the job never completes.
    assert count_csv_rows(CSV, csv_header(CSV)[1]) == len(rows) == 3


def test_csv_mapping_renames_and_drops_columns_and_short_rows_are_marked() -> None:
    content = "E-mail,Ignored,Name\nx@example.com,zz,X\ny@example.com\n"
    header, offset = csv_header(content)
    plan = {"csv_header": header, "csv_mapping": {"E-mail": "email", "Name": "first_name"}}
    rows, end = read_rows("csv", content, offset, 10, plan)
    assert rows[0] == {"email": "x@example.com", "first_name": "X"}
    assert rows[1]["email"] == "y@example.com" and "__csv_error__" in rows[1]
    assert end == len(content)


def test_jsonl_rows_resume_from_the_offset() -> None:
    content = encode_jsonl([{"email": f"{i}@example.com", "n": "é"} for i in range(5)])
    first, offset = read_rows("jsonl", content, 0, 2, {})
    rest, end = read_rows("jsonl", content, offset, 10, {})
    assert [r["email"][0] for r in first + rest] == list("01234")
    assert end >= len(content) and read_rows("jsonl", content, end, 1, {}) == ([], end)


def test_normalise_keys() -> None:
    assert normalise("email", "  Ann@Example.COM ") == "ann@example.com"
    assert normalise("username", "@Jack") == "jack"
    assert normalise("phone", "+1 (415) 555-0100") == "+14155550100"
    assert normalise("platformId", " 44196397 ") == "44196397"


def test_policy_round_trips_through_json() -> None:
    policy = ImportPolicy(key_fields=("email", "phone"), alt_key_field="phone",
                          on_existing="merge", check_block_list=True, tags=("a", "b"))
    assert ImportPolicy.from_json(policy.to_json()) == policy


# ---- decisions ----------------------------------------------------------------------------

def _decide(policy: ImportPolicy, *rows: dict[str, Any], state: ListState | None = None
            ) -> list[str]:
    state = state or ListState()
    return [decide(policy, i, dict(r), state)[0].outcome for i, r in enumerate(rows)]


def test_each_outcome_of_a_row() -> None:
    state = ListState(by_key={"old@example.com": {"email": "old@example.com", "name": "Old"}})
    out = _decide(EMAIL, {"email": "new@example.com"}, {"email": "NEW@example.com"},
                  {"email": "old@example.com"}, {"name": "no key"}, state=state)
    assert out == ["added", "skipped", "skipped", "failed"]
    assert set(state.inserts) == {"new@example.com"}


@pytest.mark.parametrize(("on_existing", "row", "outcome", "stored"), [
    ("update", {"name": "New"}, "updated", {"name": "New", "city": "Oslo"}),
    ("update", {"name": ""}, "updated", {"name": "Old", "city": "Oslo"}),
    ("update_if_changed", {"name": "Old"}, "unchanged", {"name": "Old", "city": "Oslo"}),
    ("overwrite", {"name": "New"}, "updated", {"name": "New"}),
    ("merge", {"name": "New", "zip": "1"}, "updated", {"name": "Old", "city": "Oslo",
                                                       "zip": "1"}),
    ("merge", {"name": "New"}, "unchanged", {"name": "Old", "city": "Oslo"}),
])
def test_existing_leads_follow_the_policy(on_existing: Any, row: dict[str, Any], outcome: str,
                                          stored: dict[str, Any]) -> None:
    key = "old@example.com"
    state = ListState(by_key={key: {"email": key, "name": "Old", "city": "Oslo"}})
    policy = ImportPolicy(on_existing=on_existing)
    result, _ = decide(policy, 0, {"email": key, **row}, state)
    assert result.outcome == outcome
    assert state.by_key[key] == {"email": key, **stored}


@pytest.mark.parametrize(("on_existing", "columns"), [
    ("update", {"a": "new", "b": "kept", "c": "added"}),
    ("merge", {"a": "old", "b": "kept", "c": "added"})])
def test_nested_columns_combine_column_by_column(on_existing: Any, columns: dict[str, str]
                                                 ) -> None:
    key = "k@example.com"
    state = ListState(by_key={key: {"email": key, "seen": "first",
                                    "columns": {"a": "old", "b": "kept"}}})
    policy = ImportPolicy(on_existing=on_existing, keep=("seen",))
    row = {"email": key, "seen": "later", "columns": {"a": "new", "b": "", "c": "added"}}
    result, stored = decide(policy, 0, row, state)
    assert result.outcome == "updated" and stored is not None
    assert stored["columns"] == columns and stored["seen"] == "first"


def test_alternative_key_matches_an_existing_lead_by_phone() -> None:
    state = ListState(by_key={"a@example.com": {"email": "a@example.com"}},
                      by_alt={"+14155550100": "a@example.com"})
    policy = ImportPolicy(alt_key_field="phone", phone_field="phone", on_existing="update")
    result, stored = decide(policy, 0, {"email": "b@example.com", "phone": "+1 415 555 0100"},
                            state)
    assert (result.outcome, result.key) == ("updated", "a@example.com")
    assert stored is not None and stored["email"] == "b@example.com"


def test_tags_of_the_policy_are_added_once() -> None:
    state = ListState()
    policy = ImportPolicy(tags=("vip", "q1"))
    _, stored = decide(policy, 0, {"email": "a@example.com", "tags": ["q1", "x"]}, state)
    assert stored is not None and stored["tags"] == ["q1", "x", "vip"]


# ---- magic values, one by one ---------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    ("fail_rate_limit", "Rate limit exceeded"), ("fail-ratelimit", "Rate limit exceeded"),
    ("fail_quota_reached@x.com", "Quota reached"), ("fail-server-down", "Server down"),
    ("fail_", "Import failed")])
def test_magic_fail_values_and_their_messages(value: str, expected: str) -> None:
    assert is_fail_value(value) and fail_message(value) == expected
    for field in ("email", "username"):
        result, stored = decide(ImportPolicy(key_fields=("email", "username"),
                                             email_field=None), 0, {field: value}, ListState())
        assert (result.outcome, result.fail_job, result.message) == ("failed", expected,
                                                                     expected)
        assert stored is None


@pytest.mark.parametrize("value", ["failing@example.com", "xfail_a", "fai_l", "", None])
def test_values_that_merely_resemble_fail_are_ordinary(value: str | None) -> None:
    assert not is_fail_value(value)


def test_magic_malformed_email_fails_the_row_or_is_counted() -> None:
    for bad in ("not-an-email", "a@b", "a b@example.com", "@example.com"):
        result, _ = decide(EMAIL, 0, {"email": bad}, ListState())
        assert (result.outcome, result.code, result.invalid_email) == (
            "failed", "invalid_email", True)
    counted = ImportPolicy(key_fields=("phone",), invalid_email="count")
    result, _ = decide(counted, 0, {"email": "nope", "phone": "+14155550100"}, ListState())
    assert (result.outcome, result.invalid_email) == ("added", True)


def test_magic_invalid_sms_number_is_flagged_but_the_row_kept() -> None:
    policy = ImportPolicy(phone_field="phone")
    for phone, flagged in (("+15005550001", True), ("12", True), ("+14155550100", False)):
        result, _ = decide(policy, 0, {"email": f"{phone}@example.com", "phone": phone},
                           ListState())
        assert (result.outcome, result.invalid_sms) == ("added", flagged), phone


def test_magic_blocked_domain_and_address() -> None:
    policy = ImportPolicy(check_block_list=True)
    state = ListState(blocked=frozenset({"blocked.example", "one@ok.example"}))
    out = _decide(policy, {"email": "x@blocked.example"}, {"email": "one@ok.example"},
                  {"email": "two@ok.example"}, {"email": "y@sub.blocked.example"}, state=state)
    assert out == ["blocked", "blocked", "added", "added"]
    assert _decide(ImportPolicy(), {"email": "x@blocked.example"}) == ["added"]


def test_magic_block_list_applies_through_a_job() -> None:
    core = Core()
    lst = core.new_list()
    with core.backend.store.begin() as conn:
        conn.execute(insert(t.block_list).values(workspace=core.key, vendor=VENDOR,
                                                 value="blocked.example", created_at=T0))
    policy = ImportPolicy(check_block_list=True)
    job, results = core.run_now(lst, [*emails("a"), {"email": "z@blocked.example"}],
                                policy=policy)
    assert [r.outcome for r in results] == ["added", "blocked"]
    assert job["counts"]["blocked"] == 1 and conserved(job)


@pytest.mark.parametrize(("username", "ok"), [
    ("jack", True), ("@Jack_99", True), ("suspended_bob", False), ("SUSPENDED_x", False),
    ("deleted_amy", False), ("invalid_x", False), ("has space", False), ("x" * 16, False),
    ("<string>", False)])
def test_magic_usernames_that_cannot_resolve(username: str, ok: bool) -> None:
    assert is_resolvable_username(username) is ok


@pytest.mark.parametrize(("row", "reason"), [
    ({"username": "suspended_bob"}, "@suspended_bob is suspended"),
    ({"username": "deleted_amy"}, "@deleted_amy is deleted"),
    ({"username": "invalid_x"}, "@invalid_x is invalid"),
    ({"platformId": "999123"}, "account 999123 is suspended"),
    ({"platformId": "888123"}, "account 888123 is deleted"),
    ({"platformId": "12ab"}, "'12ab' is not a valid platform id"),
    ({}, "row has no username or platformId")])
def test_magic_unresolvable_accounts_fail_their_row(row: dict[str, Any], reason: str) -> None:
    resolved = resolve_profile(row, Ctx(1234, "wbk_core", T0))
    assert resolved == {"__unresolvable__": reason}
    result, _ = decide(ImportPolicy(key_fields=("platformId",), email_field=None), 0,
                       resolved, ListState())
    assert (result.outcome, result.code, result.message) == ("failed", "unresolvable", reason)


def test_resolved_profiles_are_stable_and_shaped_like_a_prospect() -> None:
    by_name = resolve_profile({"username": "@Jack"}, Ctx(1234, "w", T0))
    again = resolve_profile({"username": "jack"}, Ctx(1234, "w", T0 + 86400 * 30))
    assert by_name["platformId"] == again["platformId"] and by_name["username"] == "jack"
    # Only the "seen" instants depend on when the account was resolved.
    moving = {"firstSeenAt", "lastUpdatedAt"}
    assert {k: v for k, v in by_name.items() if k not in moving} == {
        k: v for k, v in again.items() if k not in moving}
    assert x_profile(1234, "w", username="jack", now=T0) == by_name


def test_a_failed_import_row_through_a_paced_job_is_conserved() -> None:
    core = Core()
    lst = core.new_list()
    rows = [*emails("a"), {"email": "bad"}, *emails("a"), {"email": "fail_x@example.com"}]
    pk = core.create(lst, rows, pacing=Pacing(0, 0, 4))
    core.settle(T0 + 60)
    job = core.job(pk)
    assert job["status"] == "failed" and job["processed"] == 4 and conserved(job)
    assert [e["code"] for e in job["row_errors"]] == ["invalid_email", "job_failed"]
