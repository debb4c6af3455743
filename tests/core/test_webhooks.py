"""Webhook deliveries: signed POSTs to a real local receiver when a queued import finishes,
retries on the workspace clock, the host allow-list, determinism, and the background ticker."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import socket
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest
import yaml
from openapi_schema_validator import OAS30Validator
from sqlalchemy import select

from sandbox.app import create_app
from sandbox.core import jobs, journal, webhooks, workspaces
from sandbox.core import store as t
from sandbox.core.backend import Backend
from sandbox.core.clock import iso
from sandbox.core.errors import Conflict
from sandbox.core.imports import ImportPolicy
from sandbox.settings import SPEC_DIR, Settings
from tests.conftest import START, Sandbox
from tests.webhook_receiver import DROP, HANG, Receiver, running_receiver

SECRET = "whsec_" + "5e" * 32
T0 = datetime.fromisoformat(START.replace("Z", "+00:00")).timestamp()
# Leadlex pacing (fixtures/leadlex.yaml): 2 s queued, 1 s starting, 200 rows/s, so a
# 600-row import finishes at T0 + 6 s.
DONE = T0 + 6
ISO_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as r:
        yield r


@pytest.fixture
def backend(app: Any, client: Any) -> Any:
    return app.backend


def subscribe(backend: Any, key: str, url: str, *, events: tuple[str, ...] = ("import.completed",),
              vendor: str = "leadlex", active: bool = True) -> dict[str, Any]:
    with backend.workspace(key) as (conn, ws):
        return webhooks.register(conn, ws, vendor=vendor, url=url, events=list(events),
                                 webhook_id=backend.new_uuid(conn, ws, "webhook"),
                                 secret=SECRET, active=active)


def queue_import(backend: Any, key: str, *, rows: int = 600, vendor: str = "leadlex",
                 notify: str | None = "import.completed", fail_at: int | None = None) -> str:
    """A queued import (more rows than Leadlex processes synchronously)."""
    emails = [f"person{i}@example.com" for i in range(rows)]
    if fail_at is not None:
        emails[fail_at] = "fail_here@example.com"
    with backend.workspace(key) as (conn, ws):
        list_pk = conn.execute(select(t.lists.c.pk).where(
            t.lists.c.workspace == key, t.lists.c.vendor == "leadlex",
            t.lists.c.id == "contacts")).scalar_one()
        job_id = "imp_" + backend.new_token(conn, ws, "test-job", 24)
        jobs.create(conn, workspace=key, vendor=vendor, job_id=job_id, list_pk=list_pk,
                    kind="contacts", now=ws.now, source_format="jsonl",
                    content="".join(json.dumps({"email": e}) + "\n" for e in emails),
                    offset=0, total=rows, policy=ImportPolicy(),
                    pacing=ws.pacing("leadlex"), plan={"notify": notify} if notify else {})
        return job_id


def subscribe_http(sb: Any, url: str, events: tuple[str, ...] = ("import.completed",)) -> str:
    """Register through POST /leadlex/v1/webhooks; returns the signing secret (shown once)."""
    r = sb.call("leadlex", "POST", "/v1/webhooks", json={"url": url, "events": list(events)})
    assert r.status_code == 201, r.text
    return str(r.json()["data"]["webhook"]["secret"])


def import_http(sb: Any, rows: int = 600) -> str:
    """A queued Leadlex import (more than the 500 rows processed synchronously)."""
    r = sb.call("leadlex", "POST", "/v1/import/contacts", json={"rows": [
        {"full_name": f"Person {i}", "email": f"person{i}@example.com"} for i in range(rows)]})
    assert r.status_code == 200 and r.json()["data"]["status"] == "queued", r.text
    return str(r.json()["data"]["job_id"])


def advance(sb: Any, backend: Any, seconds: float) -> int:
    """Advance through the control API (which answers once every delivery now due has been
    attempted); returns the attempts the move made."""
    before = len(webhook_journal(backend, sb.key))
    sb.advance(seconds)
    return len(webhook_journal(backend, sb.key)) - before


def deliveries(backend: Any, key: str) -> list[dict[str, Any]]:
    with backend.store.begin() as conn:
        return webhooks.deliveries(conn, key)


def webhook_journal(backend: Any, key: str) -> list[dict[str, Any]]:
    with backend.store.begin() as conn:
        return journal.entries(conn, key, kind="webhook")


def spec_validator(component: str) -> OAS30Validator:
    spec = yaml.safe_load((SPEC_DIR / "leadlex.yaml").read_text())
    schema = {"$ref": f"#/components/schemas/{component}", "components": spec["components"]}
    return OAS30Validator(schema, format_checker=OAS30Validator.FORMAT_CHECKER)


def at(seconds_after_start: float) -> str:
    return iso(T0 + seconds_after_start)


# ---- one delivery ------------------------------------------------------------------------

def test_a_finished_queued_import_is_posted_once_signed_and_in_the_spec_shape(
        sb: Any, backend: Any, receiver: Receiver) -> None:
    secret = subscribe_http(sb, receiver.url("/leadlex"))
    job_id = import_http(sb)

    assert advance(sb, backend, 5) == 0  # not finished yet
    assert receiver.requests == []
    assert advance(sb, backend, 5) == 1
    advance(sb, backend, 1000)  # nothing is sent twice

    assert len(receiver.requests) == 1
    req = receiver.requests[0]
    assert req.method == "POST" and req.path == "/leadlex"
    h = req.headers
    expected = hmac.new(secret.encode(), req.body, hashlib.sha256).hexdigest()
    assert h["x-leadlex-signature"] == f"sha256={expected}"
    assert h["x-leadlex-timestamp"] == at(6)
    assert ISO_RE.match(h["x-leadlex-timestamp"])
    assert uuid.UUID(h["x-leadlex-delivery-id"]).version == 4
    assert h["content-type"] == "application/json"
    assert h["user-agent"] == "LeadLex-Webhook/1.0"

    event = json.loads(req.body)
    spec_validator("WebhookEvent").validate(event)
    spec_validator("ImportCompletedEvent").validate(event)
    assert event["event"] == "import.completed"
    assert event["timestamp"] == at(6)
    assert event["data"]["job_id"] == job_id
    assert event["data"]["status"] == "completed"
    assert event["data"]["created_count"] == 600
    assert uuid.UUID(event["id"]) and uuid.UUID(event["workspace_id"])
    assert sb.key not in req.body.decode()  # the API key never travels in a webhook

    [d] = deliveries(backend, sb.key)
    assert d["state"] == "delivered" and d["next_attempt_at"] is None
    assert [a["status"] for a in d["attempts"]] == [200]
    [entry] = webhook_journal(backend, sb.key)
    assert entry["status"] == 200 and entry["at"] == at(6)
    assert entry["detail"]["signature"] == h["x-leadlex-signature"]
    assert entry["detail"]["delivery_id"] == h["x-leadlex-delivery-id"]
    assert entry["detail"]["attempt"] == 1 and entry["detail"]["event"] == "import.completed"


def test_only_active_subscriptions_of_the_vendor_and_event_are_notified(
        sb: Any, backend: Any, receiver: Receiver) -> None:
    subscribe(backend, sb.key, receiver.url("/paused"), active=False)
    subscribe(backend, sb.key, receiver.url("/contacts"), events=("contact.created",))
    subscribe(backend, sb.key, receiver.url("/other-vendor"), vendor="smartlead")
    subscribe(backend, sb.key, receiver.url("/a"), events=("contact.created", "import.completed"))
    subscribe(backend, sb.key, receiver.url("/b"))
    queue_import(backend, sb.key)
    queue_import(backend, sb.key, rows=501, notify=None)  # no notify in its plan: no event

    assert advance(sb, backend, 60) == 2
    assert sorted(r.path for r in receiver.requests) == ["/a", "/b"]
    # One event, two deliveries: same body and event id, one signature each.
    bodies = {r.body for r in receiver.requests}
    assert len(bodies) == 1


def test_registering_the_same_url_twice_is_a_conflict(sb: Any, backend: Any) -> None:
    subscribe(backend, sb.key, "http://127.0.0.1:9/x")
    with pytest.raises(Conflict) as exc:
        subscribe(backend, sb.key, "http://127.0.0.1:9/x")
    assert exc.value.extra["vendor_code"] == "duplicate_webhook"


# ---- retries -----------------------------------------------------------------------------

def test_failed_answers_are_retried_with_backoff_on_the_workspace_clock(
        sb: Any, backend: Any, receiver: Receiver) -> None:
    secret = subscribe_http(sb, receiver.url())
    import_http(sb)
    receiver.answer(500, times=2)

    assert advance(sb, backend, 10) == 1   # t+6: 500
    assert advance(sb, backend, 5) == 0    # retry due at t+16
    assert advance(sb, backend, 1) == 1    # t+16: 500
    assert advance(sb, backend, 19) == 0   # retry due at t+36
    assert advance(sb, backend, 1) == 1    # t+36: 200
    assert advance(sb, backend, 1000) == 0

    assert [r.headers["x-leadlex-timestamp"] for r in receiver.requests] == [
        at(6), at(16), at(36)]
    assert len({r.body for r in receiver.requests}) == 1  # the event is the same each time
    for r in receiver.requests:
        digest = hmac.new(secret.encode(), r.body, hashlib.sha256).hexdigest()
        assert r.headers["x-leadlex-signature"] == f"sha256={digest}"
    ids = [r.headers["x-leadlex-delivery-id"] for r in receiver.requests]
    assert len(set(ids)) == 3  # one id per attempt
    [d] = deliveries(backend, sb.key)
    assert d["state"] == "delivered"
    assert [(a["n"], a["status"]) for a in d["attempts"]] == [(1, 500), (2, 500), (3, 200)]
    entries = webhook_journal(backend, sb.key)
    assert [(e["at"], e["status"], e["detail"]["attempt"]) for e in entries] == [
        (at(6), 500, 1), (at(16), 500, 2), (at(36), 200, 3)]
    assert [e["detail"]["delivery_id"] for e in entries] == ids
    assert all(e["detail"]["signature"].startswith("sha256=") for e in entries)


def test_retries_that_fall_due_within_one_advance_are_all_attempted(
        sb: Any, backend: Any, receiver: Receiver) -> None:
    subscribe_http(sb, receiver.url())
    import_http(sb)
    receiver.answer(503, times=100)

    assert advance(sb, backend, 3600) == webhooks.MAX_ATTEMPTS
    assert [r.headers["x-leadlex-timestamp"] for r in receiver.requests] == [
        at(6), at(16), at(36), at(76), at(156), at(316)]
    [d] = deliveries(backend, sb.key)
    assert d["state"] == "failed" and d["next_attempt_at"] is None
    assert len(webhook_journal(backend, sb.key)) == 6


def test_connection_errors_and_timeouts_are_retried(
        sb: Any, backend: Any, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    subscribe(backend, sb.key, f"http://127.0.0.1:{closed_port}/gone")
    subscribe(backend, sb.key, receiver.url("/dropped"))
    subscribe(backend, sb.key, receiver.url("/slow"))
    # A short timeout stands for the 10 s one: the receiver never answers the hanging request.
    # Long enough that a refused or dropped connection fails as such on a stalled CI runner.
    monkeypatch.setattr(webhooks, "TIMEOUT_SECONDS", 0.5)
    receiver.answer(DROP, path="/dropped")
    receiver.answer(HANG, path="/slow")
    queue_import(backend, sb.key)

    assert advance(sb, backend, 10) == 3
    by_url = {d["url"].rsplit("/", 1)[1]: d for d in deliveries(backend, sb.key)}
    for name in ("gone", "dropped", "slow"):
        d = by_url[name]
        assert d["state"] == "pending" and d["next_attempt_at"] == DONE + 10
        assert d["attempts"][0]["status"] is None and d["attempts"][0]["error"]
    assert "ConnectError" in by_url["gone"]["attempts"][0]["error"]
    assert by_url["slow"]["attempts"][0]["error"].startswith("timeout")


# ---- where deliveries may go -------------------------------------------------------------

@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Any HTTP request fails the test; name lookups are answered from a fake table."""
    looked_up: list[str] = []
    fake_dns = {"hooks.example.test": ["203.0.113.7"], "also-local.test": ["127.0.0.2", "::1"],
                "internal.test": ["10.1.2.3"]}

    async def post(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("a refused delivery must not touch the network")

    async def resolve(host: str, _port: int) -> list[str]:
        looked_up.append(host)
        if host not in fake_dns:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return fake_dns[host]

    monkeypatch.setattr(httpx.AsyncClient, "post", post)
    monkeypatch.setattr(webhooks, "resolve", resolve)
    return looked_up


def test_hosts_outside_loopback_are_refused_without_traffic(
        sb: Any, backend: Any, no_network: list[str]) -> None:
    urls = ["http://10.255.255.1/hook", "https://hooks.example.test/x",
            "http://[2001:db8::1]:8080/x", "http://0.0.0.0:80/"]
    for url in urls:
        subscribe(backend, sb.key, url)
    queue_import(backend, sb.key)

    assert advance(sb, backend, 10) == len(urls)
    assert advance(sb, backend, 3600) == 0  # a refusal is final
    assert no_network == ["hooks.example.test"]  # the name was resolved, then refused
    found = deliveries(backend, sb.key)
    assert [d["url"] for d in found] == urls
    for d in found:
        assert d["state"] == "failed"
        [attempt] = d["attempts"]
        assert attempt["status"] is None and attempt["error"].startswith("host not allowed: ")
    entries = webhook_journal(backend, sb.key)
    assert [e["detail"]["error"] for e in entries] == [d["attempts"][0]["error"] for d in found]
    assert all(e["status"] is None for e in entries)


@pytest.mark.parametrize(("url", "allow", "refused"), [
    ("http://127.0.0.1:1/", (), False),
    ("http://127.9.9.9:1/", (), False),
    ("http://[::1]:1/", (), False),
    ("http://localhost:1/", (), False),
    ("http://also-local.test/", (), False),          # every address it resolves to is loopback
    ("http://hooks.example.test/", (), True),        # resolved before checking
    ("http://hooks.example.test/", ("HOOKS.example.test",), False),
    ("http://internal.test/", ("10.1.2.3",), False),  # allowed by its resolved address
    ("http://10.1.2.3/", ("10.1.2.3",), False),
    ("http://[::ffff:10.1.2.3]/", (), True),
    ("http://[::ffff:127.0.0.1]/", (), False),
    ("ftp://127.0.0.1/", (), True),
    ("http://[::1/", (), True),
    ("http://127.0.0.1:99999/", (), True),
])
def test_refusal_rules(no_network: list[str], url: str, allow: tuple[str, ...],
                       refused: bool) -> None:
    reason = asyncio.run(webhooks.refusal_reason(url, allow))
    assert (reason is not None) == refused, reason


def test_an_unresolvable_name_is_a_retried_error_not_a_refusal(
        sb: Any, backend: Any, no_network: list[str]) -> None:
    subscribe(backend, sb.key, "http://nowhere.test/hook")
    queue_import(backend, sb.key)
    advance(sb, backend, 10)
    [d] = deliveries(backend, sb.key)
    assert d["state"] == "pending"
    assert d["attempts"][0]["error"].startswith("name resolution failed")
    assert no_network == ["nowhere.test"]


def test_a_name_resolving_to_loopback_is_delivered(
        sb: Any, backend: Any, receiver: Receiver) -> None:
    subscribe_http(sb, receiver.url(host="localhost"))
    import_http(sb)
    assert advance(sb, backend, 10) == 1
    assert len(receiver.requests) == 1
    assert deliveries(backend, sb.key)[0]["state"] == "delivered"


def test_the_allow_list_lets_a_non_loopback_host_through(
        settings: Settings, key: str, receiver: Receiver) -> None:
    # 0.0.0.0 is not loopback (refused by default) but a connection to it reaches this machine,
    # so allow-listing it sends real traffic to the local receiver.
    url = receiver.url(host="0.0.0.0")
    for allow, state in (((), "failed"), (("0.0.0.0",), "delivered")):
        app = create_app(settings.with_(webhook_allow=allow))
        with app.test_client():
            subscribe(app.backend, key, url)
            queue_import(app.backend, key)
            app.backend.change_clock(key, lambda c: c.advance(10))
            asyncio.run(webhooks.deliver_due(app.backend, key))
            assert deliveries(app.backend, key)[0]["state"] == state
    assert len(receiver.requests) == 1


# ---- events without a vendor builder, determinism, ticker ---------------------------------

def test_vendors_without_a_builder_get_generic_data_and_headers(
        sb: Any, backend: Any, receiver: Receiver) -> None:
    subscribe(backend, sb.key, receiver.url(), vendor="which50")
    job_id = queue_import(backend, sb.key, vendor="which50", fail_at=100)
    advance(sb, backend, 60)
    [req] = receiver.requests
    event = json.loads(req.body)
    assert event["data"]["job_id"] == job_id
    assert event["data"]["status"] == "failed"
    assert event["data"]["counts"]["added"] == 100
    expected = hmac.new(SECRET.encode(), req.body, hashlib.sha256).hexdigest()
    assert req.headers["x-sandbox-signature"] == f"sha256={expected}"
    assert req.headers["user-agent"] == "import-sandbox-webhook/1.0"
    # The job failed at row 101, due 3 s + 101 / 200 s after the import was queued.
    assert event["timestamp"] == at(3.505)


def test_delivery_bytes_are_identical_across_fresh_apps(
        settings: Settings, key: str, receiver: Receiver) -> None:
    for _ in range(2):
        with create_app(settings).test_client() as client:
            fresh = Sandbox(client, key)
            subscribe_http(fresh, receiver.url())
            import_http(fresh)
            receiver.answer(500)
            fresh.advance(30)
    first, second = receiver.requests[:2], receiver.requests[2:]
    assert len(first) == len(second) == 2
    for a, b in zip(first, second, strict=True):
        assert a.body == b.body
        assert a.headers == b.headers


def test_the_ticker_settles_busy_workspaces_and_delivers(
        settings: Settings, key: str, receiver: Receiver) -> None:
    backend = Backend(settings)  # its own database: the ticker visits every workspace
    subscribe(backend, key, receiver.url())
    queue_import(backend, key)
    with backend.workspace("wbk_idle_workspace"):
        pass
    with backend.store.begin() as conn:
        assert webhooks.busy_workspaces(conn) == [key]
    backend.change_clock(key, lambda c: c.advance(10))
    receiver.answer(500)
    assert asyncio.run(webhooks.tick(backend)) == 1
    with backend.store.begin() as conn:  # the retry keeps the workspace busy
        assert webhooks.busy_workspaces(conn) == [key]
    backend.change_clock(key, lambda c: c.advance(10))
    assert asyncio.run(webhooks.tick(backend)) == 1
    with backend.store.begin() as conn:
        assert webhooks.busy_workspaces(conn) == []
    assert len(receiver.requests) == 2
    backend.store.dispose()


@pytest.mark.parametrize("on_file", [False, True])
def test_the_ticker_leaves_what_its_rounds_did_not_reach_to_its_next_tick_in_memory(
        settings: Settings, key: str, receiver: Receiver, tmp_path: Any,
        monkeypatch: pytest.MonkeyPatch, on_file: bool) -> None:
    # Under load the rounds stop at the now they started at (or at MAX_ROUNDS); settling the
    # rest at once when opening the workspace for deliveries held the loop 300-380 ms at the
    # end of every tick (bench A). In memory the next tick's rounds take it, in slices; a
    # file store is still settled there (a stale due time can stop its slices short).
    backend = Backend(settings.with_(db_url=f"sqlite:///{tmp_path / 'ws.db'}") if on_file
                      else settings)
    subscribe(backend, key, receiver.url())
    job_id = queue_import(backend, key)
    with backend.workspace(key, settle=False) as (conn, ws):  # no settle on the way
        workspaces.save_clock(conn, ws, ws.clock.advance(10))

    async def rounds_stopped_short(*_args: Any, **_kwargs: Any) -> int:
        return 0

    real = webhooks.slicing.settle_in_slices
    monkeypatch.setattr(webhooks.slicing, "settle_in_slices", rounds_stopped_short)
    made = asyncio.run(webhooks.tick(backend))
    with backend.store.begin() as conn:
        stored = conn.execute(select(t.jobs.c.status, t.jobs.c.processed).where(
            t.jobs.c.id == job_id)).one()
    if on_file:
        assert made == 1 and tuple(stored) == ("completed", 600)
    else:
        assert made == 0 and tuple(stored) == ("queued", 0)
        monkeypatch.setattr(webhooks.slicing, "settle_in_slices", real)
        assert asyncio.run(webhooks.tick(backend)) == 1
    assert len(receiver.requests) == 1
    backend.store.dispose()


def test_the_lifespan_runs_the_ticker_only_while_serving(settings: Settings) -> None:
    async def scenario(enabled: bool) -> tuple[bool, bool]:
        backend = Backend(settings.with_(background_ticker=enabled))

        def running() -> bool:
            return any(t.get_name() == "sandbox-ticker" for t in asyncio.all_tasks())

        async with webhooks.lifespan(backend, interval=3600)(None):
            during = running()
        backend.store.dispose()
        return during, running()

    assert asyncio.run(scenario(True)) == (True, False)
    assert asyncio.run(scenario(False)) == (False, False)


def test_finding_busy_workspaces_reads_no_finished_job(settings: Settings) -> None:
    # The ticker asks this every tick, busy or idle: asked per workspace through the indexes,
    # its cost follows the workspaces, never the jobs and deliveries stored (a pass over
    # those held the loop 13 ms a tick at 100,000 stored jobs).
    backend = Backend(settings)
    with backend.store.begin() as conn:
        sql = str(webhooks._BUSY.compile(dialect=conn.dialect,
                                         compile_kwargs={"literal_binds": True}))
        plan = [row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql)]
    backend.store.dispose()
    assert not [step for step in plan if step.startswith(("SCAN jobs", "SCAN deliveries"))]
    assert any(step.startswith("SEARCH jobs USING INDEX ix_jobs_active") for step in plan)
    assert any(step.startswith("SEARCH deliveries USING INDEX ix_deliveries_due")
               for step in plan)
