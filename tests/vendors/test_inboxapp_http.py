"""InboxApp through HTTP: the error matrix (status + envelope with the field named), listing
import jobs with cursor pagination and every status-filter encoding."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Sandbox
from tests.vendors.inboxkit import LIST, create_csv, usernames_csv

JOBS = f"/lists/{LIST}/import-jobs"


def assert_error(r: Any, status: int, code: str, field: str | None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = r.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert error["code"] == code and error["status"] == status
    assert isinstance(error["message"], str) and 0 < len(error["message"]) < 500
    assert error.get("field") == field
    assert set(error) <= {"code", "message", "status", "field"}
    return error


# ---- error matrix -------------------------------------------------------------------------------

BODY_CASES = [
    ("missing data", {}, "data"),
    ("missing content", {"data": {"type": "csv"}}, "data.content"),
    ("missing type", {"data": {"content": "username\na\n"}}, "data.type"),
    ("wrong type", {"data": {"type": "csv", "content": 5}}, "data.content"),
    ("data not an object", {"data": "csv"}, "data"),
    ("unknown importer", {"data": {"type": "foo"}}, "data.type"),
    ("unknown merge strategy",
     {"data": {"type": "csv", "content": "username\na\n", "mergeStrategy": "foo"}},
     "data.mergeStrategy"),
    ("followers without username", {"data": {"type": "followers"}}, "data.username"),
    ("maxCount out of range", {"data": {"type": "followers", "username": "jack",
                                        "maxCount": 0}}, "data.maxCount"),
    ("likes without post", {"data": {"type": "likes"}}, "data.postUrl"),
    ("mapping entry incomplete", {"data": {"type": "csv", "content": "username\na\n",
                                           "columnMapping": [{"csvHeader": "username"}]}},
     "data.columnMapping[0].targetColumnId"),
]


@pytest.mark.parametrize(("body", "field"), [c[1:] for c in BODY_CASES],
                         ids=[c[0] for c in BODY_CASES])
def test_invalid_create_bodies_name_the_field(sb: Sandbox, body: dict[str, Any], field: str
                                               ) -> None:
    r = sb.call("inboxapp", "POST", JOBS, json=body)
    assert_error(r, 400, "VALIDATION_ERROR", field)


@pytest.mark.parametrize(("params", "field"), [
    ({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"limit": "ten"}, "limit"),
    ({"status": "foo"}, "status[0]"), ({"status": ["running", "foo"]}, "status[1]"),
    ({"status[]": "foo"}, "status[0]"), ({"cursor": "notacursor"}, "cursor")])
def test_invalid_list_queries_name_the_parameter(sb: Sandbox, params: dict[str, Any],
                                                 field: str) -> None:
    assert_error(sb.call("inboxapp", "GET", JOBS, params=params), 400, "VALIDATION_ERROR",
                 field)


def test_too_many_items(sb: Sandbox) -> None:
    ids = [str(10**8 + i) for i in range(2001)]
    assert_error(sb.call("inboxapp", "POST", f"/lists/{LIST}/leads", json={"platformIds": ids}),
                 400, "VALIDATION_ERROR", "platformIds")
    assert_error(sb.call("inboxapp", "POST", "/campaigns/v2/democampaign1/leads",
                         json={"usernames": ["jack"] * 2001}),
                 400, "VALIDATION_ERROR", "usernames")
    ok = sb.call("inboxapp", "POST", f"/lists/{LIST}/leads", json={"platformIds": ids[:2000]})
    assert ok.status_code == 200 and len(ok.json()["added"]) == 2000


def test_empty_and_blank_identifiers(sb: Sandbox) -> None:
    assert_error(sb.call("inboxapp", "POST", f"/lists/{LIST}/leads", json={"platformIds": []}),
                 400, "VALIDATION_ERROR", "platformIds")
    assert_error(sb.call("inboxapp", "POST", f"/lists/{LIST}/leads", json={"platformIds": [""]}),
                 400, "VALIDATION_ERROR", "platformIds[0]")
    assert_error(sb.call("inboxapp", "POST", "/campaigns/v2/democampaign1/leads", json={}),
                 400, "VALIDATION_ERROR", "platformIds")


def test_missing_auth_and_bad_keys(sb: Sandbox) -> None:
    no_auth = sb.client.get(f"/inboxapp{JOBS}")
    assert_error(no_auth, 401, "UNAUTHORIZED", "authorization")
    for header in ("Bearer ", "Bearer bad key!", "Basic dXNlcjpwdw==", "wbk_no_scheme"):
        r = sb.client.get(f"/inboxapp{JOBS}", headers={"Authorization": header})
        assert_error(r, 401, "UNAUTHORIZED", "authorization")


def test_unknown_path_and_wrong_method(sb: Sandbox) -> None:
    assert_error(sb.call("inboxapp", "GET", "/lists"), 404, "NOT_FOUND", "path")
    assert_error(sb.call("inboxapp", "GET", f"/lists/{LIST}/import-jobs/x"), 404, "NOT_FOUND",
                 "path")
    assert_error(sb.call("inboxapp", "DELETE", JOBS), 405, "METHOD_NOT_ALLOWED", "method")
    assert_error(sb.call("inboxapp", "GET", f"/lists/{LIST}/leads"), 405,
                 "METHOD_NOT_ALLOWED", "method")


def test_malformed_json_non_utf8_and_wrong_media_type(sb: Sandbox) -> None:
    json_type = {"Content-Type": "application/json"}
    assert_error(sb.call("inboxapp", "POST", JOBS, content=b'{"data":', headers=json_type),
                 400, "BAD_REQUEST", "body")
    assert_error(sb.call("inboxapp", "POST", JOBS, content=b'{"data":"\xff\xfe"}',
                         headers=json_type), 400, "BAD_REQUEST", "body")
    assert_error(sb.call("inboxapp", "POST", JOBS, content=b"username\na\n",
                         headers={"Content-Type": "text/csv"}),
                 415, "UNSUPPORTED_MEDIA_TYPE", "content-type")


def test_unknown_list_and_job_ids(sb: Sandbox) -> None:
    assert_error(sb.call("inboxapp", "GET", "/lists/nosuchlist/import-jobs"), 404,
                 "LIST_NOT_FOUND", "listId")
    assert_error(sb.call("inboxapp", "POST", "/lists/nosuchlist/import-jobs",
                         json={"data": {"type": "csv", "content": "username\na\n"}}),
                 404, "LIST_NOT_FOUND", "listId")
    assert_error(sb.call("inboxapp", "POST", "/lists/nosuchlist/leads",
                         json={"platformIds": ["1"]}), 404, "LIST_NOT_FOUND", "listId")
    assert_error(sb.call("inboxapp", "POST", f"{JOBS}/nosuchjob/cancel", json={}), 404,
                 "IMPORT_JOB_NOT_FOUND", "importJobId")
    assert_error(sb.call("inboxapp", "GET", "/lists/Not-A-List/import-jobs"), 400,
                 "VALIDATION_ERROR", "listId")


def test_a_job_of_another_list_is_not_found_under_this_one(sb: Sandbox) -> None:
    other = create_csv(sb, usernames_csv(2), list_id="demolist2")
    assert_error(sb.call("inboxapp", "POST", f"{JOBS}/{other['id']}/cancel", json={}), 404,
                 "IMPORT_JOB_NOT_FOUND", "importJobId")


@pytest.mark.parametrize(("data", "field"), [
    ({"content": "company\nAcme\n"}, "data.columnMapping"),
    ({"content": "username\na\n", "columnMapping": [
        {"csvHeader": "nope", "targetColumnId": "username"}]}, "data.columnMapping[0].csvHeader"),
    ({"content": "username\na\n", "columnMapping": [
        {"csvHeader": "username", "targetColumnId": "custom_unknown"}]},
     "data.columnMapping[0].targetColumnId"),
    ({"content": "username\n"}, "data.content")])
def test_unprocessable_csv_imports(sb: Sandbox, data: dict[str, Any], field: str) -> None:
    r = sb.call("inboxapp", "POST", JOBS, json={"data": {"type": "csv", **data}})
    assert_error(r, 422, "UNPROCESSABLE_ENTITY", field)


# ---- listing ------------------------------------------------------------------------------------

def _ids(r: Any) -> list[str]:
    assert r.status_code == 200, r.text
    return [j["id"] for j in r.json()["data"]]


def test_cursor_pagination_newest_first(sb: Sandbox) -> None:
    created = [create_csv(sb, usernames_csv(1, prefix=f"p{i}_"))["id"] for i in range(5)]
    newest_first = list(reversed(created))
    pages, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        r = sb.call("inboxapp", "GET", JOBS, params=params)
        pages.append(_ids(r))
        cursor = r.json()["nextCursor"]
        if cursor is None:
            break
        assert cursor == pages[-1][-1]
    assert pages == [newest_first[0:2], newest_first[2:4], newest_first[4:]]
    everything = sb.call("inboxapp", "GET", JOBS)
    assert _ids(everything) == newest_first and everything.json()["nextCursor"] is None
    exact = sb.call("inboxapp", "GET", JOBS, params={"limit": 5})
    assert exact.json()["nextCursor"] is None


def test_status_filter_in_every_encoding(sb: Sandbox) -> None:
    done = create_csv(sb, usernames_csv(1, prefix="d"))["id"]
    sb.advance(3.05)
    running = create_csv(sb, usernames_csv(200, prefix="r"))["id"]
    sb.advance(3.05)
    queued = create_csv(sb, usernames_csv(1, prefix="q"))["id"]
    assert _ids(sb.call("inboxapp", "GET", JOBS)) == [queued, running, done]
    both = [queued, running]
    for query in ("status=running&status=queued", "status[]=running&status[]=queued",
                  "status%5B%5D=running&status%5B%5D=queued",
                  "status[0]=running&status[1]=queued",
                  "status%5B0%5D=running&status%5B1%5D=queued"):
        r = sb.client.get(f"/inboxapp{JOBS}?{query}", headers=sb.headers("inboxapp"))
        assert _ids(r) == both, query
    for query, expected in (("status=completed", [done]), ("status[]=running", [running]),
                            ("status[0]=queued", [queued]), ("status=failed", []),
                            ("status=queued&status=queued", [queued])):
        r = sb.client.get(f"/inboxapp{JOBS}?{query}", headers=sb.headers("inboxapp"))
        assert _ids(r) == expected, query


def test_status_filter_combines_with_pagination(sb: Sandbox) -> None:
    queued = [create_csv(sb, usernames_csv(1, prefix=f"s{i}_"))["id"] for i in range(3)]
    r = sb.call("inboxapp", "GET", JOBS, params={"status": "queued", "limit": 2})
    assert _ids(r) == [queued[2], queued[1]]
    r = sb.call("inboxapp", "GET", JOBS, params={"status": "queued", "limit": 2,
                                                 "cursor": r.json()["nextCursor"]})
    assert _ids(r) == [queued[0]] and r.json()["nextCursor"] is None
