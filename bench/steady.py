"""Scenario A's steady state on a real clock, in one process, for profiling: A's request at a
fixed rate on a simulated wall clock, a ticker round each simulated second; prints the CPU the
request path and the ticker each take per request, and how long the ticker's slices held.

    python bench/steady.py                      # 1,200 creates a simulated second, 12 s
    python bench/steady.py --profile            # and cProfile's top of the ticker
    valgrind --tool=callgrind python bench/steady.py --rate 600 --seconds 8

No sockets, no wrk, no second process: the figures are the server's own work at A's load,
which is what an optimisation of the request path or of the ticker changes. On a shared
machine they still vary by ~15% between runs; instruction counts (callgrind, ~2 min a run at
600 a second) compare two builds to ~0.2% (bench/OPTIMISATIONS.md section 20)."""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import pstats
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scenarios import KEY, LIST_ID, import_body  # noqa: E402

from sandbox.core import clock, rounds, slicing, webhooks  # noqa: E402


class SimulatedWall:
    """The wall clock the workspace clocks read: moved by the driver, never by time passing."""

    def __init__(self, start: float) -> None:
        self.instant = start

    def now(self) -> float:
        return self.instant


def _scope(body: bytes) -> dict[str, Any]:
    path = f"/inboxapp/lists/{LIST_ID}/import-jobs"
    headers = [(b"host", b"127.0.0.1:8000"), (b"authorization", f"Bearer {KEY}".encode()),
               (b"content-type", b"application/json"),
               (b"content-length", str(len(body)).encode())]
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(),
            "query_string": b"", "root_path": "", "headers": headers,
            "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000)}


async def _create(app: Any, body: bytes) -> None:
    """One A request through the ASGI app, as uvicorn would hand it over."""
    sent: list[dict[str, Any]] = []
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.Event().wait()  # the client never disconnects
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(_scope(body), receive, send)
    if sent[0]["status"] != 200:
        raise SystemExit(f"A's request answered {sent[0]['status']}: {sent}")


async def run(rate: int, seconds: int, warmup: int, profile: bool) -> dict[str, Any]:
    wall = SimulatedWall(1_800_000_000.0)
    clock.wall_now = wall.now  # the workspace clocks read this; nothing waits on it
    from sandbox.app import create_app
    from sandbox.settings import Settings

    # The ticker is driven below, a round each simulated second, as run_ticker does each second.
    app = create_app(Settings(rate_limits="off", background_ticker=False))
    backend = app.backend
    gc.freeze()
    gc.set_threshold(20_000, 10, 10)  # as `sandbox serve` (sandbox/cli.py)
    slicing.PAUSE = 0.0  # between slices the loop runs once; no wall-clock wait
    held: list[float] = []
    next_slice = rounds.Round.next_slice

    def timed_slice(self: rounds.Round, *args: Any) -> list[dict[str, Any]]:
        started = time.perf_counter()
        try:
            return next_slice(self, *args)
        finally:
            held.append(time.perf_counter() - started)

    rounds.Round.next_slice = timed_slice  # type: ignore[method-assign,assignment]
    profiler = cProfile.Profile() if profile else None
    body = import_body()
    request_cpu = ticker_cpu = 0.0
    measured = 0
    for second in range(seconds):
        started = time.process_time()
        for _ in range(rate):
            wall.instant += 1.0 / rate
            await _create(app, body)
        created = time.process_time()
        if second == warmup:
            held.clear()
        if profiler is not None and second >= warmup:
            profiler.enable()
        await webhooks.tick(backend)
        if profiler is not None:
            profiler.disable()
        if second >= warmup:
            request_cpu += created - started
            ticker_cpu += time.process_time() - created
            measured += rate
    with backend.store.begin() as conn:
        statuses = dict(conn.exec_driver_sql(
            "SELECT status, count(*) FROM jobs WHERE workspace = ? GROUP BY status",
            (KEY,)).fetchall())
        rows_applied = conn.exec_driver_sql(
            "SELECT coalesce(sum(processed), 0) FROM jobs WHERE workspace = ?",
            (KEY,)).scalar_one()
    held.sort()
    result = {
        "rate": rate, "seconds": seconds, "warmup": warmup, "requests_measured": measured,
        "request_us": round(request_cpu / max(measured, 1) * 1e6, 1),
        "ticker_us": round(ticker_cpu / max(measured, 1) * 1e6, 1),
        "slices": len(held),
        "slice_p50_ms": round(held[len(held) // 2] * 1e3, 2) if held else None,
        "slice_p99_ms": round(held[int(len(held) * 0.99)] * 1e3, 2) if held else None,
        "jobs": statuses, "rows_applied": rows_applied,
    }
    if profiler is not None:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=1200, help="creates a simulated second")
    parser.add_argument("--seconds", type=int, default=12, help="simulated seconds in all")
    parser.add_argument("--warmup", type=int, default=6,
                        help="simulated seconds before measuring (a job lives ~3.5 s)")
    parser.add_argument("--profile", action="store_true", help="cProfile the measured ticks")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if not 0 <= args.warmup < args.seconds:
        parser.error("--warmup must be below --seconds")
    result = asyncio.run(run(args.rate, args.seconds, args.warmup, args.profile))
    print(f"requests {result['request_us']} us/req, ticker {result['ticker_us']} us/req, "
          f"total {result['request_us'] + result['ticker_us']:.1f} us/req; "
          f"{result['slices']} slices, p50 {result['slice_p50_ms']} ms, "
          f"p99 {result['slice_p99_ms']} ms; jobs {result['jobs']}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
