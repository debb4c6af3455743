"""Connection and body limits of a live server: idle connections, request heads and bodies sent
slowly do not block anyone else and are cut off (5 s idle, 10 s head, --body-timeout body: see
tests/README.md); a body over the vendor limit is refused before it is read."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.reliability.conftest import Server, auth
from tests.reliability.kit import assert_envelope, new_key

BODY_TIMEOUT = 2.0
IDLE_TIMEOUT = 5.0  # uvicorn's timeout_keep_alive, armed from the first byte on (sandbox.cli)
HEAD_TIMEOUT = 10.0  # sandbox.http.server.HEAD_TIMEOUT
LIMIT = 20 * 1024 * 1024  # info.x-sandbox-max-body-bytes of every vendor spec
PATH = "/inboxapp/lists/demolist1/import-jobs"


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("limits") / "s.db", "--body-timeout",
                    str(BODY_TIMEOUT))
    server.start()
    yield server
    server.stop()


def connect(srv: Server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
    return sock


def head(key: str, length: int | None, path: str = PATH) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Authorization: Bearer {key}",
             "Content-Type: application/json"]
    lines.append(f"Content-Length: {length}" if length is not None
                 else "Transfer-Encoding: chunked")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of one HTTP/1.1 response (Content-Length framed)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed before a response: {data!r}"
        data += chunk
    raw_head, body = data.split(b"\r\n\r\n", 1)
    lines = raw_head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (x.split(":", 1) for x in lines[1:])}
    while len(body) < int(headers.get("content-length", 0)):
        chunk = sock.recv(65536)
        assert chunk
        body += chunk
    return int(lines[0].split()[1]), headers, body


def closed_within(sock: socket.socket, seconds: float) -> float:
    """Seconds until the server closed `sock` (reading EOF), failing past `seconds`."""
    started = time.monotonic()
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    return time.monotonic() - started


def served_quickly(srv: Server, n: int = 20) -> float:
    """The slowest of `n` ordinary requests by another client."""
    key = new_key("bystander")
    worst = 0.0
    with srv.client() as c:
        for _ in range(n):
            started = time.monotonic()
            r = c.get(PATH, **auth("inboxapp", key))
            worst = max(worst, time.monotonic() - started)
            assert r.status_code == 200, r.text
    return worst


def test_idle_and_slow_head_connections_do_not_block_others_and_are_closed(
        srv: Server) -> None:
    idle = [connect(srv) for _ in range(30)]  # opened, never a byte sent
    trickling = [connect(srv) for _ in range(10)]
    for sock in trickling:
        sock.sendall(b"GET /__sandbox/health HTTP/1.1\r\nHost: x\r\n")  # the head never ends
    assert served_quickly(srv) < 1.0
    waits: dict[str, list[float]] = {"idle": [], "head": []}

    def drip(sock: socket.socket) -> None:
        # One header byte a second: keeps resetting any idle timer, never finishes the head.
        try:
            for _ in range(int(HEAD_TIMEOUT * 3)):
                sock.sendall(b"X")
                time.sleep(1.0)
        except OSError:
            return

    drippers = [threading.Thread(target=drip, args=(s,), daemon=True) for s in trickling]
    for t in drippers:
        t.start()
    started = time.monotonic()
    waits["idle"] = [closed_within(s, IDLE_TIMEOUT + 10) for s in idle]
    assert served_quickly(srv) < 1.0
    waits["head"] = [time.monotonic() - started + closed_within(s, HEAD_TIMEOUT + 10)
                     for s in trickling]
    assert max(waits["idle"]) < IDLE_TIMEOUT + 5, waits
    assert min(waits["head"]) > HEAD_TIMEOUT - 1 and max(waits["head"]) < HEAD_TIMEOUT + 5, waits
    for sock in idle + trickling:
        sock.close()


def test_a_slow_body_gets_a_408_in_the_vendor_envelope_and_others_are_served(
        srv: Server) -> None:
    key = new_key("slowbody")
    body = json.dumps({"data": {"type": "csv", "content": "username\nann\n"}}).encode()
    slow = connect(srv)
    slow.sendall(head(key, len(body)) + body[:5])
    sent = threading.Event()

    def trickle() -> None:
        try:
            for byte in body[5:-1]:
                slow.sendall(bytes([byte]))
                time.sleep(0.2)
                if sent.is_set():
                    return
        except OSError:
            return

    dripper = threading.Thread(target=trickle, daemon=True)
    started = time.monotonic()
    dripper.start()
    assert served_quickly(srv) < 1.0  # while the body trickles in
    status, headers, answer = read_response(slow)
    sent.set()
    elapsed = time.monotonic() - started
    assert status == 408
    assert BODY_TIMEOUT - 0.5 < elapsed < BODY_TIMEOUT + 3, elapsed
    assert headers.get("connection") == "close"
    error = json.loads(answer)["error"]  # InboxApp's envelope
    assert error["status"] == 408 and error["field"] == "body"
    closed_within(slow, 10)
    slow.close()
    with srv.client() as c:  # nothing was created by the cut-off request
        jobs = c.get(PATH, **auth("inboxapp", key)).json()["data"]
        assert jobs == []
        journal = c.get(f"/__sandbox/workspaces/{key}/requests").json()["data"]
        assert [e["status"] for e in journal] == [408, 200]


@pytest.mark.parametrize("vendor,path", [
    ("inboxapp", PATH), ("leadlex", "/leadlex/v1/import/contacts"),
    ("which50", "/which50/contactLists/1/import"), ("smartlead", "/smartlead/lead-list/1/import")])
def test_a_declared_oversized_body_is_refused_before_it_is_sent(
        srv: Server, vendor: str, path: str) -> None:
    key = new_key("big")
    sock = connect(srv)
    request = head(key, LIMIT + 1, path)
    if vendor == "smartlead":
        request = request.replace(path.encode(), f"{path}?api_key={key}".encode(), 1)
    sock.sendall(request)  # and not one byte of the 20 MiB body
    started = time.monotonic()
    status, headers, answer = read_response(sock)
    assert status == 413 and time.monotonic() - started < 2.0
    response = httpx.Response(status, headers=headers, content=answer)
    assert_envelope(vendor, "POST", "/" + path.split("/", 2)[2], response, 413)
    sock.close()


def test_a_chunked_body_over_the_limit_is_cut_off_while_streaming(srv: Server) -> None:
    """No Content-Length to check up front: the gateway counts while reading and stops at
    the limit, without reading (or storing) the rest."""
    key = new_key("chunked")
    sock = connect(srv)
    sock.sendall(head(key, None))
    chunk = b"a" * (1024 * 1024)
    sent = 0
    try:
        while sent < 3 * LIMIT:  # far more than the limit, unless the server stops us
            sock.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass
    status, _headers, answer = read_response(sock)
    assert status == 413, answer[:300]
    assert json.loads(answer)["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert sent < 3 * LIMIT
    sock.close()
    assert served_quickly(srv, 3) < 1.0


def test_a_body_within_the_limit_is_read_in_full(srv: Server) -> None:
    key = new_key("nearlimit")
    rows = "".join(f"user{i}\n" for i in range(1_500_000))  # ~15 MB: a big, legal upload
    with srv.client(timeout=120) as c:
        r = c.post(PATH, **auth("inboxapp", key),
                   json={"data": {"type": "csv", "content": "username\n" + rows}})
    assert r.status_code == 200, r.text[:300]
    assert r.json()["totalCount"] == 1_500_000
