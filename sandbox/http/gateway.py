"""The gateway in front of every vendor request: body-size limit and body-read deadline,
per-request scenarios, rate limits with their headers, the `Allow` header of a 405, and the
journal entry. Everything else is Connexion's."""

from __future__ import annotations

import asyncio
import re
import types
from collections.abc import Awaitable, Coroutine, Generator
from contextvars import Token
from typing import Any, cast
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sandbox.core import journal, ratelimit, scenarios
from sandbox.core.backend import Admitted, Backend
from sandbox.core.errors import PayloadTooLarge, RequestTimeout, SandboxError
from sandbox.core.workspaces import Workspace
from sandbox.http.errors import ERROR_KEY, respond
from sandbox.vendors import VendorFace, face_for_path

ROUTING = "connexion_routing"
ARMED_KEY = "sandbox.armed"
DEFAULT_MAX_BODY = 20 * 1024 * 1024
CLOSE = {"Connection": "close"}
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# (full path pattern, the methods its spec documents), for the `Allow` header of a 405.
AllowTable = list[tuple[re.Pattern[str], tuple[str, ...]]]


def allow_table(prefix: str, spec: dict[str, Any]) -> AllowTable:
    table: AllowTable = []
    for path, item in (spec.get("paths") or {}).items():
        methods = tuple(m.upper() for m in HTTP_METHODS if m in item)
        pieces = re.split(r"\{[^}/]+\}", prefix + path)
        table.append((re.compile("^" + "[^/]+".join(map(re.escape, pieces)) + "$"), methods))
    return table


class Gateway:
    def __init__(self, app: ASGIApp, backend: Backend, max_body: dict[str, int],
                 allow: AllowTable | None = None) -> None:
        self.app = app
        self.backend = backend
        self.max_body = max_body
        self.allow = allow or []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.backend.activate()
        # Connexion's routing copies the scope; a shared `extensions` dict is how the operationId
        # and a rejection reach the journal (uvicorn, unlike the test client, sends none).
        scope.setdefault("extensions", {})
        # A body that trickles in (slowloris) must not hold the request forever: the whole body
        # is due `body_timeout` seconds after the request head, whatever the route.
        receive = deadline_receive(receive, self.backend.settings.body_timeout)
        send = self._with_allow(scope, send)
        face = face_for_path(scope["path"])
        if face is None:
            try:
                await self.app(scope, await _unchunked(scope, receive, DEFAULT_MAX_BODY), send)
            except SandboxError as err:
                await respond(scope, err)(scope, receive, send)
            return
        query = scope.get("query_string", b"")
        if b"[" in query or b"%5B" in query or b"%5b" in query:
            scope["query_string"] = normalise_array_query(query)
        await self._vendor_request(face, scope, receive, send)

    def _with_allow(self, scope: Scope, send: Send) -> Send:
        """Starlette's 405 lists only the first route that matched the path (Connexion makes
        one route per operation); RFC 9110 wants every method the resource supports."""

        async def send_allow(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                methods = sorted({m for pattern, ms in self.allow
                                  if pattern.match(scope["path"]) for m in ms})
                if methods:
                    headers = MutableHeaders(raw=list(message.get("headers", [])))
                    headers["allow"] = ", ".join(methods)
                    message = {**message, "headers": headers.raw}
            await send(message)

        return send_allow

    def workspace_of(self, face: VendorFace, scope: Scope) -> str | None:
        key = face.key_from(scope)
        if key is None or not face.key_is_well_formed(key):
            return None
        if self.backend.allowed_keys is not None and key not in self.backend.allowed_keys:
            return None
        return key

    async def _vendor_request(self, face: VendorFace, scope: Scope, receive: Receive,
                              send: Send) -> None:
        workspace = self.workspace_of(face, scope)
        limit = self.max_body.get(face.name, DEFAULT_MAX_BODY)
        captured = bytearray()
        size = 0
        status = 500
        extra_headers: dict[str, str] = {}
        state: dict[str, float] = {}
        admission = None

        async def counting_receive() -> Message:
            nonlocal size
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    # Closing the connection is what stops the client's upload.
                    raise PayloadTooLarge(f"body: payload exceeds {limit} bytes",
                                          field="body", rule="maxBytes", headers=dict(CLOSE))
                if len(captured) < journal.MAX_BODY_CHARS:
                    captured.extend(chunk[:journal.MAX_BODY_CHARS - len(captured)])
            return message

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if not extra_headers:  # nearly always: no header to add
                    await send(message)
                    return
                headers = MutableHeaders(raw=list(message.get("headers", [])))
                for name, value in extra_headers.items():
                    if name not in headers:
                        headers[name] = value
                message = {**message, "headers": headers.raw}
            await send(message)

        try:
            declared = _content_length(scope)
            if declared is not None and declared > limit:
                size = declared
                raise PayloadTooLarge(f"body: payload of {declared} bytes exceeds {limit} bytes",
                                      field="body", rule="maxBytes", headers=dict(CLOSE))
            if workspace is not None:
                delay, admission = self._admit(face, workspace, scope, extra_headers, state)
                if delay:
                    await asyncio.sleep(delay)
            await self.app(scope, await _unchunked(scope, counting_receive, limit),
                           send_with_headers)
        except SandboxError as err:
            response = respond(scope, err)
            await response(scope, receive, send_with_headers)
        finally:
            if admission is not None:
                self.backend.end_admission(admission)
            if workspace is not None and "at" in state:
                self._journal(face, workspace, scope, status, bytes(captured), size, state["at"],
                              touch="untouched" in state)

    def _admit(self, face: VendorFace, workspace: str, scope: Scope,
               extra_headers: dict[str, str], state: dict[str, float]
               ) -> tuple[float, Token[Admitted | None]]:
        """Open the workspace, apply a scenario header and the rate limit. Records the clock
        time of the request in `state`; returns a delay to wait before answering, and the
        admission the handler reuses (Backend.admit) for the gateway to end."""
        known = self.backend.known_workspace(workspace)
        if (known is not None and not face.request_id_header
                and not self._windows(face, known.settings)):
            # Nothing to count or draw: no transaction (the journal entry records the
            # workspace's last use instead).
            ws = known
            state["at"] = ws.now
            state["untouched"] = 1
            scope["extensions"][ARMED_KEY] = self.backend.any_armed(workspace)
            scenario = _scenario(scope)
        else:
            ws, scenario = self._admit_in_transaction(face, workspace, scope, extra_headers,
                                                      state)
        if scenario is None:
            return 0.0, self.backend.admit(workspace, ws)
        failure = scenario.error()
        if failure is not None:
            extra_headers.update(failure.headers)
            raise failure
        return scenario.delay or 0.0, self.backend.admit(workspace, ws)

    def _admit_in_transaction(self, face: VendorFace, workspace: str, scope: Scope,
                              extra_headers: dict[str, str], state: dict[str, float]
                              ) -> tuple[Workspace, scenarios.Scenario | None]:
        # Admission reads the clock, settings and counters, never job state: no settling.
        with self.backend.workspace(workspace, settle=False) as (conn, ws):
            now = state["at"] = ws.now
            if face.request_id_header:
                extra_headers[face.request_id_header] = "req_" + self.backend.new_token(
                    conn, ws, "request-id", 24)
            # Whether ArmedScenarios, after routing, needs a transaction of its own (rarely).
            scope["extensions"][ARMED_KEY] = self.backend.any_armed(workspace, conn)
            scenario = _scenario(scope)
            windows = self._windows(face, ws.settings)
            if windows:
                try:
                    verdict = ratelimit.hit(conn, workspace, face.name, windows, now)
                except SandboxError as err:
                    extra_headers.update(err.headers)
                    raise
                extra_headers.update(verdict.headers())
        self.backend.remember(workspace, ws)
        return ws, scenario

    def _windows(self, face: VendorFace, ws_settings: dict[str, Any]) -> tuple[Any, ...]:
        mode = ws_settings.get("rate_limits", self.backend.settings.rate_limits)
        if mode == "off" or not face.rate_limits:
            return ()
        plans = ws_settings.get("rate_plans", {})
        plan = plans.get(face.name, face.default_rate_plan)
        return face.rate_limits.get(plan, next(iter(face.rate_limits.values())))

    def _journal(self, face: VendorFace, workspace: str, scope: Scope, status: int,
                 body: bytes, size: int, at: float, touch: bool = False) -> None:
        ext = scope.get("extensions", {})
        error = ext.get(ERROR_KEY)
        operation_id = (ext.get(ROUTING) or {}).get("operation_id")
        # `touch`: admitted without a transaction, so the workspace's last use is recorded
        # with the entry. Written in batches on an in-memory store (journal.Pending).
        self.backend.journal.add(dict(
            workspace=workspace, at=at, vendor=face.name, operation_id=operation_id,
            method=scope["method"], path=scope["path"],
            query=scope.get("query_string", b"").decode("latin-1"), status=status,
            body=journal.clip(body, size) if body else None,
            errors=[error] if error else None), touch=touch)


def _scenario(scope: Scope) -> scenarios.Scenario | None:
    """The per-request scenario header's failure or delay, if the request sent one."""
    header = _header(scope, scenarios.HEADER)
    return scenarios.parse_header(header) if header else None


def deadline_receive(receive: Receive, seconds: float) -> Receive:
    """`receive`, failing with a 408 once `seconds` have passed since the request began and
    its body is still incomplete (waiting for a disconnect afterwards is never cut short)."""
    deadline = asyncio.get_running_loop().time() + seconds
    complete = False

    async def timed_receive() -> Message:
        nonlocal complete
        if complete:
            return await receive()
        try:
            message = await _by_deadline(receive(), deadline)
        except TimeoutError:
            raise RequestTimeout(f"body: the request body did not arrive within {seconds:g} s",
                                 field="body", rule="timeout", headers=dict(CLOSE)) from None
        complete = message["type"] != "http.request" or not message.get("more_body", False)
        return message

    return timed_receive


async def _by_deadline(waiting: Awaitable[Message], deadline: float) -> Message:
    """`await waiting` under `asyncio.timeout_at(deadline)`. A message that is already there
    (a small body arrives with the request head) is taken without suspending, and a timeout
    can only cut an await that suspends, so such a message is taken without the timer (~6 us
    a request to arm and cancel)."""
    if not isinstance(waiting, types.CoroutineType):
        async with asyncio.timeout_at(deadline):
            return await waiting
    try:
        yielded = waiting.send(None)
    except StopIteration as done:
        return cast(Message, done.value)
    # It suspended: the rest of it is awaited under the deadline, as a whole await would be.
    async with asyncio.timeout_at(deadline):
        return cast(Message, await _resumed(waiting, yielded))


@types.coroutine
def _resumed(coro: Coroutine[Any, Any, Any], yielded: Any) -> Generator[Any, Any, Any]:
    """The rest of `await coro` for a coroutine already stepped once (it yielded `yielded`):
    what the event loop sends or throws goes on to it, what it yields goes up to the loop."""
    while True:
        try:
            sent = yield yielded
        except BaseException as exc:  # a cancellation thrown in goes on to the coroutine
            try:
                yielded = coro.throw(exc)
            except StopIteration as done:
                return done.value
        else:
            try:
                yielded = coro.send(sent)
            except StopIteration as done:
                return done.value


async def _unchunked(scope: Scope, receive: Receive, limit: int) -> Receive:
    """A chunked body (no Content-Length) read in full, up to `limit`, and replayed with its
    Content-Length: Connexion takes a request without that header for one without a body."""
    if _header(scope, "content-length") is not None or _header(
            scope, "transfer-encoding") is None:
        return receive
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return receive
        body += message.get("body", b"")
        if len(body) > limit:
            raise PayloadTooLarge(f"body: payload exceeds {limit} bytes", field="body",
                                  rule="maxBytes", headers=dict(CLOSE))
        if not message.get("more_body", False):
            break
    scope["headers"] = [(k, v) for k, v in scope.get("headers", [])
                        if k != b"transfer-encoding"] + [(b"content-length",
                                                          str(len(body)).encode())]
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        return {"type": "http.request", "body": bytes(body), "more_body": False}

    return replay


_ARRAY_SUFFIX = re.compile(r"^(?P<name>[^\[\]]+)\[(?P<index>[0-9]*)\]$")


def normalise_array_query(query: bytes) -> bytes:
    """`status[]=a&status[]=b` and `status[0]=a&status[1]=b` -> `status=a&status=b`: the
    encodings InboxApp v1 accepts besides the repeated key (which the specs declare)."""
    pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
    out = []
    for name, value in pairs:
        m = _ARRAY_SUFFIX.match(name)
        out.append((m.group("name") if m else name, value))
    return urlencode(out).encode("latin-1")


def _content_length(scope: Scope) -> int | None:
    raw = _header(scope, "content-length")
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        return None


def _header(scope: Scope, name: str) -> str | None:
    target = name.encode()
    for key, value in scope.get("headers", []):
        if key == target:
            return str(value.decode("latin-1"))
    return None
