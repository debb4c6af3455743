"""Real sandbox servers for the reliability tests: `python -m sandbox serve` in a subprocess on
a free loopback port and a file database, polled until healthy, stopped or SIGKILLed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

START = "2025-01-15T10:00:00Z"
ROOT = Path(__file__).resolve().parents[2]
# How long a server may take to answer its first health check (a cold start parses five
# specs: about a second here; the margin is for a loaded CI machine).
STARTUP_SECONDS = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """One `sandbox serve` process. `start()` may be called again after `kill()` or `stop()`:
    the same port and the same database file, as a restarted deployment would have."""

    def __init__(self, db: Path, *extra: str, memory: bool = False) -> None:
        self.db = db  # with memory=True, only where the log goes: the database is in RAM
        self.memory = memory
        self.extra = extra
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = db.with_suffix(".log")

    def args(self) -> list[str]:
        db = [] if self.memory else ["--db", f"sqlite:///{self.db}"]
        return [sys.executable, "-m", "sandbox", "serve", "--port", str(self.port), *db,
                "--clock-start", START, "--frozen", "--rate-limits", "off", *self.extra]

    def start(self) -> Server:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SANDBOX_")}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(self.args(), cwd=ROOT, env=env, stdout=log,
                                         stderr=subprocess.STDOUT)
        self._wait_healthy()
        return self

    def _wait_healthy(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + STARTUP_SECONDS
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                try:
                    if client.get(f"{self.url}/__sandbox/health").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                # Waiting on the process (not sleeping) notices a server that died at once.
                try:
                    code = self.proc.wait(timeout=0.05)
                except subprocess.TimeoutExpired:
                    continue
                raise AssertionError(f"sandbox exited with {code}:\n{self.log_text()}")
        raise AssertionError(f"sandbox not healthy after {STARTUP_SECONDS}s:\n{self.log_text()}")

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, exactly like a crash or an OOM kill."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc = None

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=15)
        self.proc = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""

    def rss_kib(self) -> int:
        """Resident memory of the server process (Linux /proc), in KiB."""
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    # ---- HTTP helpers --------------------------------------------------------------------

    def client(self, **kwargs: Any) -> httpx.Client:
        kwargs.setdefault("timeout", 30.0)
        return httpx.Client(base_url=self.url, **kwargs)

    def advance(self, key: str, seconds: float) -> dict[str, Any]:
        with self.client() as c:
            r = c.post(f"/__sandbox/workspaces/{key}/clock/advance", json={"seconds": seconds})
        assert r.status_code == 200, r.text
        return dict(r.json())


def auth(vendor: str, key: str) -> dict[str, Any]:
    """Request kwargs that carry `key` the way `vendor` expects it."""
    if vendor == "smartlead":
        return {"params": {"api_key": key}}
    return {"headers": {"Authorization": f"Bearer {key}"}}


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One live sandbox shared by the tests that only need a server (each uses its own
    workspace keys, which isolates them completely)."""
    srv = Server(tmp_path_factory.mktemp("shared") / "s.db").start()
    yield srv
    srv.stop()


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[Any]:
    """A factory of servers private to the test (restarts, small caps), all stopped after."""
    started: list[Server] = []

    def make(*extra: str, memory: bool = False) -> Server:
        srv = Server(tmp_path / f"s{len(started)}.db", *extra, memory=memory)
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop()
