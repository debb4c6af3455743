"""pytest plugin (`pytest11 = import_sandbox`): a `sandbox` fixture giving each test its own
workspace on a sandbox server started once per session (or the one named by --sandbox-url)."""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.client import (
    Clock,
    Job,
    JournalEntry,
    SandboxClient,
    SandboxControlError,
    Scenario,
    SeedResult,
    Workspace,
    WorkspaceSettings,
)

# Where every workspace clock of a plugin-started server begins (frozen by default), so that
# ids, timestamps and fake data are the same on every run.
CLOCK_START = "2025-01-15T10:00:00Z"
HEALTH_ATTEMPTS = 1200  # x POLL_INTERVAL (at least): a minute for a server to come up
POLL_INTERVAL = 0.05
START_TRIES = 3  # a free port can be taken between choosing it and binding it


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("import-sandbox")
    group.addoption("--sandbox-url", default=None,
                    help="use the sandbox server at this URL instead of starting one "
                         "(env SANDBOX_URL)")
    group.addoption("--sandbox-control-token", default=None,
                    help="control token of that server (env SANDBOX_CONTROL_TOKEN)")
    group.addoption("--sandbox-clock", choices=["frozen", "real"], default=None,
                    help="frozen (default): time moves only with sandbox.advance(); real: "
                         "workspace clocks follow the wall clock")
    group.addoption("--sandbox-rate-limits", choices=["vendor", "off"], default=None,
                    help="rate limits of a plugin-started server (default vendor)")
    parser.addini("sandbox_url", "default for --sandbox-url", default="")
    parser.addini("sandbox_clock", "default for --sandbox-clock", default="frozen")
    parser.addini("sandbox_rate_limits", "default for --sandbox-rate-limits",
                  default="vendor")


def _option(config: pytest.Config, name: str, env: str | None = None) -> str | None:
    value = config.getoption(f"--sandbox-{name.replace('_', '-')}")
    if value is None and env:
        value = os.environ.get(env)
    if value is None and name in {"url", "clock", "rate_limits"}:
        value = str(config.getini(f"sandbox_{name}")) or None
    return str(value) if value is not None else None


# ---- the server --------------------------------------------------------------------------

class SandboxServerError(RuntimeError):
    """The sandbox server could not be started."""


@dataclass
class SandboxServer:
    """A sandbox server: started by the plugin (process set) or external (--sandbox-url)."""

    url: str
    control_token: str | None = None
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def external(self) -> bool:
        return self.process is None

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        if self.log_path is not None:
            self.log_path.unlink(missing_ok=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_command(port: int, *, clock: str, rate_limits: str) -> list[str]:
    cmd = [sys.executable, "-m", "sandbox", "serve", "--host", "127.0.0.1", "--port", str(port),
           "--rate-limits", rate_limits]
    if clock == "frozen":
        cmd += ["--clock-start", CLOCK_START, "--frozen"]
    return cmd


def start_server(*, clock: str = "frozen", rate_limits: str = "vendor") -> SandboxServer:
    """Start `python -m sandbox serve` on a free loopback port and wait until it is healthy."""
    last_log = ""
    for _ in range(START_TRIES):
        port = free_port()
        log_fd, log_name = tempfile.mkstemp(prefix="import-sandbox-", suffix=".log")
        log_path = Path(log_name)
        # The plugin's own server listens on loopback only: no control token.
        env = {k: v for k, v in os.environ.items() if k != "SANDBOX_CONTROL_TOKEN"}
        with os.fdopen(log_fd, "wb") as log:
            process = subprocess.Popen(server_command(port, clock=clock, rate_limits=rate_limits),
                                       stdout=log, stderr=subprocess.STDOUT, env=env)
        server = SandboxServer(f"http://127.0.0.1:{port}", process=process, log_path=log_path)
        outcome = _wait_healthy(server)
        if outcome == "healthy":
            return server
        last_log = _read(log_path)
        server.stop()
        if outcome == "silent":
            raise SandboxServerError(f"the sandbox server at {server.url} did not answer "
                                     f"/__sandbox/health; its output:\n{last_log}")
    raise SandboxServerError(f"the sandbox server did not start ({START_TRIES} tries); its "
                             f"output:\n{last_log}")


def _wait_healthy(server: SandboxServer) -> str:
    """"healthy", "died" (worth another port: it may have been taken) or "silent"."""
    assert server.process is not None
    with httpx.Client(timeout=1.0, trust_env=False) as http:
        for _ in range(HEALTH_ATTEMPTS):
            try:
                if http.get(server.url + "/__sandbox/health").status_code == 200:
                    return "healthy"
            except httpx.TransportError:
                pass
            try:
                # Waits between polls, and returns at once if the server died.
                server.process.wait(timeout=POLL_INTERVAL)
                return "died"
            except subprocess.TimeoutExpired:
                continue
    return "silent"


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-4000:]
    except OSError:
        return ""


@pytest.fixture(scope="session")
def sandbox_server(pytestconfig: pytest.Config) -> Iterator[SandboxServer]:
    """The session's sandbox server (under pytest-xdist: one per worker, unless --sandbox-url)."""
    url = _option(pytestconfig, "url", "SANDBOX_URL")
    token = _option(pytestconfig, "control_token", "SANDBOX_CONTROL_TOKEN")
    if url:
        server = SandboxServer(url.rstrip("/"), control_token=token)
        with SandboxClient(server.url, token) as client:
            try:
                client.health()
            except (httpx.TransportError, SandboxControlError) as exc:
                raise SandboxServerError(f"no sandbox answers at {server.url}: {exc}") from exc
        yield server
        return
    server = start_server(clock=_option(pytestconfig, "clock") or "frozen",
                          rate_limits=_option(pytestconfig, "rate_limits") or "vendor")
    try:
        yield server
    finally:
        server.stop()


# ---- one workspace per test --------------------------------------------------------------

class Sandbox:
    """One test's workspace: the same API key for all four vendors, its own clock."""

    def __init__(self, server: SandboxServer, key: str) -> None:
        self.server = server
        self.url = server.url
        self.key = key
        self.client = SandboxClient(server.url, server.control_token)
        self._http: list[httpx.Client] = []

    # -- pointing an integration at the sandbox

    def base_url(self, vendor: str) -> str:
        """What replaces the vendor's base URL, e.g. http://127.0.0.1:PORT/inboxapp."""
        from sandbox.vendors import face

        return self.url + face(vendor).prefix

    def api_key(self, vendor: str | None = None) -> str:
        """The API key of this test's workspace (the same for every vendor)."""
        return self.key

    def auth(self, vendor: str) -> dict[str, Any]:
        """httpx keyword arguments carrying the key where the vendor expects it."""
        from sandbox.vendors import face

        location = face(vendor).key_in
        if location.startswith("query:"):
            return {"params": {location.split(":", 1)[1]: self.key}}
        return {"headers": {"Authorization": f"Bearer {self.key}"}}

    def http(self, vendor: str, **kwargs: Any) -> httpx.Client:
        """An httpx.Client on the vendor's base URL with the key in place (closed at teardown)."""
        options: dict[str, Any] = {"trust_env": False, **self.auth(vendor), **kwargs}
        client = httpx.Client(base_url=self.base_url(vendor), **options)
        self._http.append(client)
        return client

    # -- the control API, bound to this workspace

    def workspace(self) -> Workspace:
        return self.client.workspace(self.key)

    def clock(self) -> Clock:
        return self.client.clock(self.key)

    def advance(self, seconds: float) -> Clock:
        return self.client.advance(self.key, seconds)

    def freeze(self) -> Clock:
        return self.client.freeze(self.key)

    def resume(self) -> Clock:
        return self.client.resume(self.key)

    def speed(self, speed: float) -> Clock:
        return self.client.speed(self.key, speed)

    def job(self, job_id: str, vendor: str | None = None) -> Job:
        return self.client.job(self.key, job_id, vendor=vendor)

    def jobs(self, vendor: str | None = None, status: str | None = None) -> list[Job]:
        return list(self.client.iter_jobs(self.key, vendor=vendor, status=status))

    def transition(self, job_id: str, to: str, error: str | None = None,
                   vendor: str | None = None) -> Job:
        return self.client.transition(self.key, job_id, to, error, vendor=vendor)

    def requests(self, operation_id: str | None = None, status: int | None = None,
                 kind: str | None = None, vendor: str | None = None) -> list[JournalEntry]:
        return self.client.requests(self.key, operation_id=operation_id, status=status,
                                    kind=kind, vendor=vendor)

    def clear_requests(self) -> int:
        return self.client.clear_requests(self.key)

    def arm(self, operation_id: str, status: int | None = None, delay: float | None = None,
            times: int = 1, retry_after: int | None = None) -> Scenario:
        return self.client.arm(self.key, operation_id, status=status, delay=delay, times=times,
                               retry_after=retry_after)

    def disarm(self) -> int:
        return self.client.disarm(self.key)

    def seed(self, doc: dict[str, Any]) -> SeedResult:
        return self.client.seed(self.key, doc)

    def reset(self) -> Workspace:
        return self.client.reset(self.key)

    def settings(self) -> WorkspaceSettings:
        return self.client.settings(self.key)

    def set_pacing(self, name: str, *, queue_wait: float | None = None,
                   start_delay: float | None = None,
                   rows_per_second: float | None = None) -> WorkspaceSettings:
        return self.client.set_pacing(self.key, name, queue_wait=queue_wait,
                                      start_delay=start_delay, rows_per_second=rows_per_second)

    def set_rate_limits(self, mode: str | None = None, *,
                        plans: dict[str, str] | None = None) -> WorkspaceSettings:
        return self.client.set_rate_limits(self.key, mode, plans=plans)

    def close(self) -> None:
        for client in self._http:
            client.close()
        try:
            self.client.delete(self.key, missing_ok=True)
        finally:
            self.client.close()


def workspace_key(nodeid: str, *, unique: bool) -> str:
    """Well formed for every vendor (Leadlex wants `wbk_`); derived from the test id so a
    plugin-started server gives the same ids every run, randomised on a shared server."""
    key = "wbk_pytest_" + hashlib.sha1(nodeid.encode()).hexdigest()[:16]
    return key + "_" + secrets.token_hex(4) if unique else key


@pytest.fixture
def sandbox(sandbox_server: SandboxServer, request: pytest.FixtureRequest
            ) -> Iterator[Sandbox]:
    """A fresh workspace on the session's sandbox, deleted after the test."""
    sb = Sandbox(sandbox_server, workspace_key(request.node.nodeid,
                                               unique=sandbox_server.external))
    try:
        if (_option(request.config, "clock") or "frozen") == "frozen":
            sb.freeze()
        yield sb
    finally:
        sb.close()
