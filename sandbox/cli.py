"""The `sandbox` command line: `serve` runs the sandbox, `check` validates specs and fixtures."""

from __future__ import annotations

import argparse
import gc
import sys
import warnings
from collections.abc import Sequence

from sandbox.settings import Settings
from sandbox.vendors import DEMO_KEY, FACES


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sandbox", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the sandbox (all four vendors + control API)")
    serve.add_argument("--host", help="interface to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8080)")
    serve.add_argument("--db", dest="db_url",
                       help="SQLAlchemy URL; default in-memory SQLite, e.g. sqlite:///sandbox.db")
    serve.add_argument("--seed", type=int, help="seed of all fake data and ids (default 1234)")
    serve.add_argument("--auth", choices=["open", "strict"],
                       help="open: any well-formed key gets a workspace; strict: --keys-file only")
    serve.add_argument("--keys-file", help="API keys accepted in strict mode, one per line")
    serve.add_argument("--rate-limits", choices=["vendor", "off"],
                       help="enforce the vendors' documented rate limits (default vendor)")
    serve.add_argument("--clock-start", help="ISO instant every new workspace clock starts at")
    serve.add_argument("--frozen", action="store_const", const="frozen", dest="clock_mode",
                       help="new workspace clocks start frozen (move them with the control API)")
    serve.add_argument("--control-token", help="protect /__sandbox with this bearer token")
    serve.add_argument("--webhook-allow", action="append", default=None,
                       help="host webhooks may be delivered to besides loopback (repeatable)")
    serve.add_argument("--max-workspaces", type=int, help="cap on live workspaces (LRU evicted)")
    serve.add_argument("--body-timeout", type=float,
                       help="seconds a request body may take to arrive (default 30; then 408)")
    serve.add_argument("--log-level", default="warning")
    sub.add_parser("check", help="validate the OpenAPI specs and fixture files")
    sub.add_parser("assumptions", help="print the specs' x-sandbox-assumed choices (Markdown)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Connexion imports Starlette's test client, which nags about httpx at import time.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    args = build_parser().parse_args(argv)
    if args.command == "check":
        return check()
    if args.command == "assumptions":
        from sandbox.assumptions import markdown

        print(markdown(Settings.from_env().spec_dir))
        return 0
    return serve(args)


def settings_from(args: argparse.Namespace) -> Settings:
    overrides = {name: getattr(args, name, None) for name in (
        "host", "port", "db_url", "seed", "auth", "keys_file", "rate_limits", "clock_start",
        "clock_mode", "control_token", "max_workspaces", "body_timeout")}
    if args.webhook_allow:
        overrides["webhook_allow"] = tuple(args.webhook_allow)
    return Settings.from_env(**overrides)


def banner(settings: Settings) -> str:
    base = f"http://{settings.host}:{settings.port}"
    lines = [f"import-sandbox listening on {base}", ""]
    width = max(len(f.title) for f in FACES)
    for face in FACES:
        lines.append(f"  {face.title:<{width}}  {base}{face.prefix:<12} (instead of "
                     f"{face.real_base_url})")
    lines += ["", f"  demo API key (works for all four): {DEMO_KEY}",
              f"  control API: {base}/__sandbox   dashboard: {base}/__sandbox/ui",
              f"  API docs: {base}/<vendor>/__docs/", ""]
    return "\n".join(lines)


def serve(args: argparse.Namespace) -> int:
    # Start-up allocates ~90,000 long-lived objects (modules, parsed specs, routes, validators)
    # and little garbage: with the collector off until they are frozen below, the collections
    # they would trigger (~70 ms of start-up) are not run.
    gc.disable()
    from sandbox import deferred, faker_catalogue

    deferred.install()
    faker_catalogue.install()
    import uvicorn

    from sandbox.app import create_app

    settings = settings_from(args)
    app = create_app(settings)
    # The parsed specs, routes and compiled validators live as long as the process: moved out of
    # the collector's reach, they are not traversed again by every full collection (p99). No
    # collection first: it would take 30-50 ms to free start-up's ~400 KB of cyclic garbage
    # (throwaway classes and closures of the imports), which is frozen along instead.
    gc.freeze()
    # A request allocates thousands of short-lived objects, nearly all freed by reference
    # counting: at the default threshold (700) the collector ran several times a request
    # (~7% of A's CPU). 20,000 still collects cyclic garbage every few requests.
    gc.set_threshold(20_000, 10, 10)
    gc.enable()
    print(banner(settings), flush=True)
    from sandbox.http.server import protocol_class

    # Idle connections close after 5 s, request heads are due within 10 s, bodies within
    # --body-timeout: slow or silent clients cannot use up the 1000 connection slots.
    # uvicorn formats every access-log line's arguments before the logger drops it for its
    # level: off unless the level shows them.
    uvicorn.run(app, host=settings.host, port=settings.port, log_level=args.log_level,
                access_log=args.log_level in {"trace", "debug", "info"},
                timeout_keep_alive=5, limit_concurrency=1000, http=protocol_class())
    return 0


def check() -> int:
    import yaml
    from openapi_spec_validator import validate

    from sandbox.core.fixtures import load_dir

    settings = Settings.from_env()
    ok = True
    for path in sorted(settings.spec_dir.glob("*.yaml")):
        try:
            validate(yaml.safe_load(path.read_text()))
            print(f"ok      {path.name}")
        except Exception as exc:  # report every broken file, not just the first
            ok = False
            print(f"INVALID {path.name}: {exc}", file=sys.stderr)
    try:
        docs = load_dir(settings.fixture_dir)
        print(f"ok      fixtures ({len(docs)} files)")
    except Exception as exc:
        ok = False
        print(f"INVALID fixtures: {exc}", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
