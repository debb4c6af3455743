"""Hostile request bodies against a live server, for every vendor: each is refused with a 4xx in
that vendor's envelope, quickly, and the very next request is served. CSV formula values are
kept as data, never evaluated."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.reliability.conftest import Server, auth
from tests.reliability.kit import (
    TARGETS,
    VENDORS,
    assert_envelope,
    new_key,
    post_raw,
    valid_request_works,
)

# "Quickly": a refusal must not cost more than this (a 10 MB body included; typically 0.1 s).
QUICK_SECONDS = 5.0
TEN_MB = 10 * 1024 * 1024


def _body(vendor: str, text: str) -> bytes:
    return json.dumps(TARGETS[vendor][1](text)).encode()


def _nested(depth: int) -> bytes:
    return b'{"x": ' + b"[" * depth + b"]" * depth + b"}"


HOSTILE: dict[str, Callable[[str], bytes]] = {
    "malformed JSON": lambda v: _body(v, "x")[:-3],
    "non-UTF-8 bytes": lambda v: _body(v, "PLACEHOLDER").replace(b"PLACEHOLDER", b"\xff\xfe\xc3"),
    "10 MB string": lambda v: _body(v, "a" * TEN_MB),
    "nesting 10,000 deep": lambda v: _nested(10_000),
    "escaped NUL": lambda v: _body(v, "ann\u0000bob"),
    "raw NUL byte": lambda v: _body(v, "PLACEHOLDER").replace(b"PLACEHOLDER", b"ann\x00bob"),
    "empty body": lambda v: b"",
    "JSON of the wrong type": lambda v: b'"just a string"',
}


@pytest.fixture(scope="module")
def client(server: Server) -> Iterator[httpx.Client]:
    with server.client() as c:
        yield c


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_json_is_refused_quickly_in_the_vendor_envelope(
        client: httpx.Client, vendor: str, case: str) -> None:
    key = new_key("hostile")
    started = time.monotonic()
    response = post_raw(client, vendor, key, HOSTILE[case](vendor))
    elapsed = time.monotonic() - started
    assert_envelope(vendor, "POST", TARGETS[vendor][0], response)
    assert elapsed < QUICK_SECONDS, elapsed
    valid_request_works(client, vendor, key)


@pytest.mark.parametrize("vendor", VENDORS)
def test_property_names_outside_latin1_never_break_a_request(
        client: httpx.Client, vendor: str) -> None:
    """The vendor specs leave their objects open (the real APIs ignore unknown keys), so such
    a property is accepted and ignored or kept as data; it never costs a 5xx, and non-ASCII
    text of every plane round-trips through the journal."""
    key = new_key("latin")
    body = TARGETS[vendor][1]("名前 😀")
    body["中文\U0001F600\u202e"] = {"ключ": "\U0010FFFD"}
    response = post_raw(client, vendor, key, json.dumps(body, ensure_ascii=False).encode())
    assert 200 <= response.status_code < 300, response.text[:300]
    journal = client.get(f"/__sandbox/workspaces/{key}/requests").json()["data"]
    assert "中文\U0001F600" in journal[-1]["body"]


def test_property_names_outside_latin1_are_refused_where_objects_are_closed(
        client: httpx.Client) -> None:
    key = new_key("latin")
    client.post(f"/__sandbox/workspaces/{key}/clock/advance", json={"seconds": 1})
    response = client.put(f"/__sandbox/workspaces/{key}/settings",
                          json={"rateLimits": "off", "中文\U0001F600": 1})
    assert response.status_code == 400, response.text
    assert "中文\U0001F600" in response.json()["error"]["message"]


@pytest.mark.parametrize("vendor", ["inboxapp", "leadlex"])
def test_csv_with_a_broken_quote_is_refused(client: httpx.Client, vendor: str) -> None:
    key = new_key("csv")
    broken = 'username,email,bio\n"ann,ann@example.com,hi\nbob,bob@example.com,yo\n'
    body = ({"data": {"type": "csv", "content": broken}} if vendor == "inboxapp"
            else {"csv": broken.replace("username", "full_name")})
    response = post_raw(client, vendor, key, json.dumps(body).encode())
    error = assert_envelope(vendor, "POST", TARGETS[vendor][0], response)
    assert "CSV" in json.dumps(error)
    valid_request_works(client, vendor, key)


@pytest.mark.parametrize("vendor", ["inboxapp", "leadlex"])
def test_csv_field_over_the_csv_limit_is_refused_not_left_to_break_the_job(
        server: Server, client: httpx.Client, vendor: str) -> None:
    """A field longer than the csv module allows (128 KiB) used to be accepted and then fail
    every later settle of the workspace (500 on each clock move): refused up front now."""
    key = new_key("csv")
    content = "username,email,bio\nann,ann@example.com," + "x" * 200_000 + "\n"
    body = ({"data": {"type": "csv", "content": content}} if vendor == "inboxapp"
            else {"csv": content.replace("username", "full_name")})
    response = post_raw(client, vendor, key, json.dumps(body).encode())
    assert_envelope(vendor, "POST", TARGETS[vendor][0], response)
    server.advance(key, 3600)
    valid_request_works(client, vendor, key)


def test_csv_formula_values_are_kept_as_data(server: Server, client: httpx.Client) -> None:
    """Formula-looking cells (CSV injection) are stored and answered verbatim: the sandbox
    never evaluates, strips or escapes them (that is the spreadsheet's business)."""
    key = new_key("formula")
    formulas = ["=1+2", "=HYPERLINK(\"http://evil.example\")", "+SUM(A1:A9)",
                "-2+3", "@cmd|' /C calc'!A0"]
    rows = "".join(f'"{f.replace(chr(34), chr(34) * 2)}",f{i}@example.com\n'
                   for i, f in enumerate(formulas))
    response = post_raw(client, "leadlex", key,
                        json.dumps({"csv": "full_name,email\n" + rows}).encode())
    assert response.status_code == 200, response.text
    assert response.json()["data"]["created_count"] == len(formulas)
    listed = client.get("/leadlex/v1/contacts", params={"per_page": 100},
                        **auth("leadlex", key)).json()["data"]["contacts"]
    # Match the emails sent exactly: the workspace's seeded contacts have Faker emails, and
    # one may start with "f" too.
    sent = {f"f{i}@example.com": formula for i, formula in enumerate(formulas)}
    assert {c["email"]: c["full_name"] for c in listed if c["email"] in sent} == sent


XML_NS = ('xmlns:i="http://www.w3.org/2001/XMLSchema-instance" '
          'xmlns="http://schemas.datacontract.org/2004/07/W50API.Controllers"')
ARRAYS = 'xmlns:d2p1="http://schemas.microsoft.com/2003/10/Serialization/Arrays"'


def _xml(field: str, prolog: str = "") -> bytes:
    return (f'<?xml version="1.0"?>{prolog}<ImportJobCreateRequest {XML_NS}>'
            f'<FieldNames {ARRAYS}><d2p1:string>{field}</d2p1:string></FieldNames>'
            f'</ImportJobCreateRequest>').encode()


LAUGHS = ('<!DOCTYPE r [<!ENTITY a "lollollollollollollollollollol">'
          + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">'
                    for i in range(9)) + "]>")
HOSTILE_XML: dict[str, bytes] = {
    "external entity (XXE)": _xml("&xxe;", '<!DOCTYPE r [<!ENTITY xxe SYSTEM '
                                           '"file:///etc/passwd">]>'),
    "parameter entity": _xml("x", '<!DOCTYPE r [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x">'
                                  '%p;]>'),
    "entity expansion (billion laughs)": _xml("&j;", LAUGHS),
    "malformed XML": _xml("Email")[:-10],
    "NUL in XML": _xml("a\x00b"),
    "non-UTF-8 XML": _xml("PLACEHOLDER").replace(b"PLACEHOLDER", b"\xff\xfe"),
    "nesting 10,000 deep": (f"<ImportJobCreateRequest {XML_NS}>" + "<a>" * 10_000
                            + "</a>" * 10_000 + "</ImportJobCreateRequest>").encode(),
}


@pytest.mark.parametrize("case", list(HOSTILE_XML))
def test_hostile_xml_is_refused_quickly(client: httpx.Client, case: str) -> None:
    key = new_key("xml")
    started = time.monotonic()
    response = post_raw(client, "which50", key, HOSTILE_XML[case], "application/xml")
    assert time.monotonic() - started < QUICK_SECONDS
    assert_envelope("which50", "POST", TARGETS["which50"][0], response)
    assert "root:" not in response.text  # nothing of /etc/passwd leaks
    ok = post_raw(client, "which50", key, _xml("Email"), "application/xml")
    assert ok.status_code == 200, ok.text
