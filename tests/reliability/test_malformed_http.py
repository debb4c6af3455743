"""A request the HTTP parser refuses (a malformed header line, a control character in a
header, a broken chunk) gets a 400 in the vendor's error envelope, as every other bad
request does, and the connection is closed; the server keeps serving."""

from __future__ import annotations

import json
import socket

import pytest

from tests.reliability.conftest import Server
from tests.reliability.test_limits import read_response

BROKEN_HEADERS = [
    b"X-Broken\x01Name: 1\r\n",       # a control character in a header name
    b"X-Value: a\x00b\r\n",           # NUL in a value
    b"No colon at all\r\n",           # not a header line
]


def send_raw(server: Server, head: bytes) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        sock.sendall(head)
        status, headers, body = read_response(sock)
        assert sock.recv(1) == b"", "the connection stays open after a malformed request"
    return status, headers, body


@pytest.mark.parametrize("broken", BROKEN_HEADERS)
def test_inboxapp_answers_its_envelope(server: Server, broken: bytes) -> None:
    status, headers, body = send_raw(
        server, b"POST /inboxapp/lists/demolist1/import-jobs HTTP/1.1\r\nHost: x\r\n" + broken
        + b"Content-Length: 0\r\n\r\n")
    assert status == 400
    assert headers["content-type"] == "application/json"
    error = json.loads(body)["error"]
    assert error["code"] == "VALIDATION_ERROR" and error["status"] == 400
    assert error["field"] == "request" and "malformed HTTP request" in error["message"]


def test_which50_answers_xml_when_asked(server: Server) -> None:
    # The parser hands a header over once the next one begins: Accept is read here.
    status, headers, body = send_raw(
        server, b"GET /which50/contactLists HTTP/1.1\r\nHost: x\r\nAccept: application/xml\r\n"
        b"X-Next: 1\r\n" + BROKEN_HEADERS[0] + b"\r\n")
    assert status == 400 and headers["content-type"].startswith("application/xml")
    assert body.startswith(b"<Error><Message>The request is invalid.</Message>")
    status, headers, body = send_raw(
        server, b"GET /which50/contactLists HTTP/1.1\r\nHost: x\r\n" + BROKEN_HEADERS[0]
        + b"\r\n")
    assert status == 400 and json.loads(body)["Message"] == "The request is invalid."


def test_a_broken_chunk_and_an_unknown_path_get_the_sandbox_envelope(server: Server) -> None:
    status, headers, body = send_raw(
        server, b"POST /leadlex/v1/contacts HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
        b"\r\nContent-Type: application/json\r\n\r\nzz\r\n")
    assert status == 400 and headers["content-type"] == "application/json"
    assert json.loads(body)["error"]["code"] == "validation_error"
    status, _, body = send_raw(server, b"GET /elsewhere HTTP/1.1\r\n" + BROKEN_HEADERS[2]
                               + b"\r\n")
    assert status == 400 and "malformed HTTP request" in json.loads(body)["error"]["message"]


def test_the_server_keeps_serving(server: Server) -> None:
    send_raw(server, b"GET /inboxapp/lists HTTP/1.1\r\n" + BROKEN_HEADERS[1] + b"\r\n")
    with server.client() as client:
        assert client.get("/__sandbox/health").status_code == 200
