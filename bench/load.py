"""Load generators: wrk (the measurement tool of the full run) and a small asyncio + httpx loop
(smoke mode, and filling a workspace with a given number of jobs)."""

from __future__ import annotations

import asyncio
import math
import re
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from servers import OUT


@dataclass
class LoadResult:
    tool: str
    connections: int
    seconds: float
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    non2xx: int
    socket_errors: int
    # Server CPU time per answered request (ms): robust to other load on the machine.
    cpu_ms: float = float("nan")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes = b""


# ---- wrk ----------------------------------------------------------------------------------

def wrk(wrk_bin: str, req: Request, *, connections: int, seconds: float, threads: int = 1,
        name: str = "load") -> LoadResult:
    """One wrk run. One thread by default: on a 2-core machine the second core belongs to the
    server under test (the same for every server, so the ratios are fair)."""
    script = _lua(req, name)
    cmd = [wrk_bin, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
           "--latency", "--timeout", "10s", "-s", str(script), req.url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    (OUT / f"{name}.wrk.txt").write_text(out)
    return parse_wrk(out, connections)


def _lua(req: Request, name: str) -> Path:
    lines = [f'wrk.method = "{req.method}"']
    for key, value in req.headers.items():
        lines.append(f'wrk.headers["{key}"] = [==[{value}]==]')
    if req.body:
        lines.append(f"wrk.body = [==[{req.body.decode()}]==]")
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"{name}.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(f"unreadable wrk duration {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(out: str, connections: int) -> LoadResult:
    def grab(pattern: str, default: str | None = None) -> str:
        m = re.search(pattern, out, re.MULTILINE)
        if m is None:
            if default is None:
                raise ValueError(f"wrk output lacks {pattern!r}:\n{out}")
            return default
        return m.group(1)

    requests = int(grab(r"^\s*(\d+) requests in"))
    seconds = _ms(grab(r"requests in ([0-9.]+[a-z]+),")) / 1000
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)",
                                            grab(r"Socket errors: (.*)$", "")))
    return LoadResult(
        tool="wrk", connections=connections, seconds=round(seconds, 2), requests=requests,
        rps=float(grab(r"^Requests/sec:\s+([0-9.]+)")),
        p50_ms=_ms(grab(r"^\s+50%\s+(\S+)")), p99_ms=_ms(grab(r"^\s+99%\s+(\S+)")),
        # wrk counts answers with a status >= 400 here; nothing here answers 1xx or 3xx.
        non2xx=int(grab(r"Non-2xx or 3xx responses: (\d+)", "0")), socket_errors=errors)


# ---- asyncio + httpx ----------------------------------------------------------------------

def pyload(req: Request, *, connections: int, seconds: float | None = None,
           count: int | None = None, body_for: Any = None) -> LoadResult:
    """Closed-loop load from `connections` concurrent clients, for `seconds` or until `count`
    requests were answered. `body_for(i)` varies the body per request when given."""
    return asyncio.run(_pyload(req, connections, seconds, count, body_for))


async def _pyload(req: Request, connections: int, seconds: float | None, count: int | None,
                  body_for: Any) -> LoadResult:
    latencies: list[float] = []
    statuses: list[int] = []
    errors = 0
    issued = 0
    start = time.perf_counter()
    deadline = start + seconds if seconds is not None else math.inf
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal issued, errors
        while time.perf_counter() < deadline and (count is None or issued < count):
            i = issued
            issued += 1
            body = body_for(i) if body_for is not None else req.body
            t0 = time.perf_counter()
            try:
                r = await client.request(req.method, req.url, headers=req.headers,
                                         content=body)
            except httpx.HTTPError:
                errors += 1
                continue
            latencies.append((time.perf_counter() - t0) * 1000)
            statuses.append(r.status_code)

    async with httpx.AsyncClient(limits=limits, timeout=60.0) as client:
        await asyncio.gather(*(worker(client) for _ in range(connections)))
    elapsed = time.perf_counter() - start
    latencies.sort()
    return LoadResult(
        tool="httpx", connections=connections, seconds=round(elapsed, 2),
        requests=len(latencies), rps=round(len(latencies) / elapsed, 1),
        p50_ms=round(percentile(latencies, 50), 3), p99_ms=round(percentile(latencies, 99), 3),
        non2xx=sum(1 for s in statuses if not 200 <= s < 300), socket_errors=errors)


def percentile(sorted_values: list[float], pct: float) -> float:
    if not sorted_values:
        return float("nan")
    rank = max(0, math.ceil(pct / 100 * len(sorted_values)) - 1)
    return sorted_values[rank]
