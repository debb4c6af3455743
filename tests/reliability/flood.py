"""The long workspace-growth run (not a test): start a sandbox on an in-memory database, send it
N distinct API keys, and print the live workspace count, the server's memory and the request
time as the keys pile up.

    python -m tests.reliability.flood --keys 100000 [--max-workspaces 10000] [--clients 4]

Results are recorded in tests/README.md.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.reliability.conftest import Server, auth

PATH = "/inboxapp/lists/demolist1/import-jobs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--max-workspaces", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        srv = Server(Path(tmp) / "flood.db", "--max-workspaces", str(args.max_workspaces),
                     memory=True).start()
        try:
            run(srv, args.keys, args.clients)
        finally:
            srv.stop()


def run(srv: Server, keys: int, clients: int) -> None:
    print(f"{'keys':>8} {'live':>7} {'rss MiB':>8} {'median ms':>10} {'p95 ms':>8}")
    step = max(keys // 20, clients)
    started = time.monotonic()

    def one(i: int) -> float:
        with srv.client() as c:
            t0 = time.monotonic()
            r = c.get(PATH, **auth("inboxapp", f"wbk_flood_{i:07d}"))
            assert r.status_code == 200, r.text
            return time.monotonic() - t0

    with ThreadPoolExecutor(clients) as pool:
        for first in range(0, keys, step):
            times = list(pool.map(one, range(first, min(first + step, keys))))
            with srv.client() as c:
                live = len(c.get("/__sandbox/workspaces", params={"limit": 1000}).json()["data"])
            q = statistics.quantiles(times, n=20)
            print(f"{first + len(times):>8} {live:>7}{'+' if live == 1000 else ' '}"
                  f"{srv.rss_kib() / 1024:>8.0f} {statistics.median(times) * 1000:>10.1f} "
                  f"{q[-1] * 1000:>8.1f}", flush=True)
    print(f"{keys} keys in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
