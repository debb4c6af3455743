"""Benchmark plumbing: install the load tool and the peers, start and stop the servers under
test (the sandbox, Prism, Connexion's mock), and read what the machine and a process used."""

from __future__ import annotations

import compileall
import contextlib
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PEERS = BENCH / ".peers"
OUT = BENCH / "out"
PRISM_VERSION = "5.14.2"  # newer releases need Node 24
PRISM_BIN = PEERS / "prism" / "node_modules" / ".bin" / "prism"
INBOXAPP_SPEC = ROOT / "openapi" / "inboxapp.yaml"
CLOCK_START = "2025-01-15T10:00:00Z"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---- tools --------------------------------------------------------------------------------

def ensure_wrk() -> str:
    """wrk from Debian's packages (installed when missing and apt-get is at hand)."""
    found = shutil.which("wrk")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt is None:
        raise SystemExit("wrk is missing and apt-get is not available: install wrk")
    log("installing wrk with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    if subprocess.run([*sudo, apt, "install", "-y", "-qq", "wrk"], env=env,
                      capture_output=True).returncode != 0:
        subprocess.run([*sudo, apt, "update", "-qq"], env=env, check=True, capture_output=True)
        subprocess.run([*sudo, apt, "install", "-y", "-qq", "wrk"], env=env, check=True,
                       capture_output=True)
    found = shutil.which("wrk")
    if not found:
        raise SystemExit("could not install wrk")
    return found


def ensure_prism() -> Path:
    """Prism, pinned, installed with npm into bench/.peers/prism (git-ignored)."""
    if PRISM_BIN.exists() and _prism_version() == PRISM_VERSION:
        return PRISM_BIN
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("npm is missing: install Node.js 18-22 and npm (apt-get install npm)")
    log(f"installing @stoplight/prism-cli@{PRISM_VERSION} into {PRISM_BIN.parents[2]}")
    (PEERS / "prism").mkdir(parents=True, exist_ok=True)
    subprocess.run([npm, "install", "--prefix", str(PEERS / "prism"), "--no-audit", "--no-fund",
                    "--save-exact", "--loglevel=error",
                    f"@stoplight/prism-cli@{PRISM_VERSION}"], check=True)
    return PRISM_BIN


def _prism_version() -> str | None:
    pkg = PEERS / "prism" / "node_modules" / "@stoplight" / "prism-cli" / "package.json"
    if not pkg.exists():
        return None
    import json

    return str(json.loads(pkg.read_text()).get("version"))


def connexion_mock_spec() -> Path:
    """The InboxApp spec for Connexion's own mock: identical, except that its bearer check is a
    trivial function (the sandbox's needs the sandbox's backend)."""
    import yaml

    spec = yaml.safe_load(INBOXAPP_SPEC.read_text())
    for scheme in spec["components"]["securitySchemes"].values():
        if "x-bearerInfoFunc" in scheme:
            scheme["x-bearerInfoFunc"] = "peer_auth.bearer_info"
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "inboxapp-connexion-mock.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


# ---- machine ------------------------------------------------------------------------------

def machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_kb = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
    node = _version([shutil.which("node") or "node", "--version"])
    wrk = _version([shutil.which("wrk") or "wrk", "--version"]).split(" [")[0]
    return {"nproc": os.cpu_count(), "cpu": cpu, "memory_gib": round(mem_kb / 1024 / 1024, 1),
            "os": platform.platform(), "python": platform.python_version(), "node": node,
            "wrk": wrk, "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "load_average": os.getloadavg()[0]}


def _version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "n/a"
    return (out.stdout or out.stderr).strip().splitlines()[0] if (out.stdout or out.stderr
                                                                   ) else "n/a"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def peak_rss_mb(pid: int) -> float:
    """The process's high-water resident set (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pgid: int) -> float:
    """User + system CPU time of every live process in a process group (a server and the
    workers it forked): the cost of a load run, whatever else the machine is doing."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # field 5 of stat: the process group
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


# ---- servers ------------------------------------------------------------------------------

@dataclass
class Server:
    name: str
    base: str  # URL prefix of the InboxApp API on this server
    cmd: list[str]
    cwd: Path = ROOT
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    startup_s: float = float("nan")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, probe: Any, timeout: float = 60.0) -> Server:
        """Spawn and wait for the first 200 of `probe(client, base)`: the start-up time."""
        OUT.mkdir(parents=True, exist_ok=True)
        logfile = open(OUT / f"{self.name.replace(' ', '_')}.log", "wb")  # noqa: SIM115
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(self.cmd, cwd=self.cwd, env={**os.environ, **self.env},
                                     stdout=logfile, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = self.started + timeout
        last = "no answer"
        with httpx.Client(timeout=5.0) as client:
            while True:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see "
                                       f"{logfile.name}")
                try:
                    answer = probe(client, self.base)
                    if answer.status_code == 200:
                        break
                    last = f"{answer.status_code} {answer.text[:300]}"
                except httpx.HTTPError as exc:
                    last = repr(exc)
                if time.perf_counter() > deadline:
                    self.stop()
                    raise RuntimeError(f"{self.name} did not answer 200 within {timeout} s: {last}")
                time.sleep(0.005)
        self.startup_s = time.perf_counter() - self.started
        return self

    def stop(self) -> None:
        """End the process group this server was started in (its own, by id)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def sandbox(name: str = "sandbox", *, frozen: bool = False, extra: list[str] | None = None
            ) -> Server:
    port = free_port()
    cmd = [sys.executable, "-m", "sandbox", "serve", "--port", str(port),
           "--rate-limits", "off"]
    if frozen:
        cmd += ["--frozen", "--clock-start", CLOCK_START]
    return Server(name, f"http://127.0.0.1:{port}/inboxapp", cmd + (extra or []))


def compile_sandbox() -> None:
    """Write the sandbox's bytecode, as `pip install` does for an installed package. A checkout
    run with PYTHONDONTWRITEBYTECODE=1 (as on this machine) never writes it, and then compiles
    its ~60 modules on every start."""
    compileall.compile_dir(str(ROOT / "sandbox"), quiet=1)


@contextlib.contextmanager
def uncompiled_sandbox(name: str) -> Iterator[Server]:
    """A sandbox started from a copy of the checkout without bytecode, told not to write any:
    every start compiles the sandbox's own modules (third-party ones keep theirs), like the
    first start of a fresh checkout."""
    with tempfile.TemporaryDirectory(prefix="sandbox-src-") as tmp:
        skip = shutil.ignore_patterns("__pycache__", "*.pyc")
        for part in ("sandbox", "openapi", "fixtures"):
            shutil.copytree(ROOT / part, Path(tmp) / part, ignore=skip)
        server = sandbox(name)
        server.cwd, server.env = Path(tmp), {"PYTHONDONTWRITEBYTECODE": "1"}
        with server:
            yield server


def prism(name: str, fast: bool) -> Server:
    port = free_port()
    cmd = [str(ensure_prism()), "mock", "-p", str(port), str(INBOXAPP_SPEC)]
    if fast:
        cmd[2:2] = ["-m", "-v", "error"]
    return Server(name, f"http://127.0.0.1:{port}", cmd)


def connexion_mock(name: str = "connexion --mock=all") -> Server:
    port = free_port()
    exe = Path(sys.executable).with_name("connexion")
    cmd = [str(exe), "run", str(connexion_mock_spec()), str(BENCH), "--mock=all", "-p", str(port),
           "--base-path", "/inboxapp"]
    return Server(name, f"http://127.0.0.1:{port}/inboxapp", cmd,
                  env={"PYTHONPATH": str(BENCH)})
