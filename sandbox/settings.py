"""Typed settings of one sandbox process, from CLI flags or SANDBOX_* environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Literal

ROOT = Path(__file__).resolve().parent.parent
SPEC_DIR = ROOT / "openapi"
FIXTURE_DIR = ROOT / "fixtures"

AuthMode = Literal["open", "strict"]
RateLimitMode = Literal["vendor", "off"]
ClockMode = Literal["real", "frozen"]


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    db_url: str = "sqlite://"
    seed: int = 1234
    auth: AuthMode = "open"
    keys_file: str | None = None
    rate_limits: RateLimitMode = "vendor"
    # A fixed ISO instant makes every new workspace clock start there (determinism in CI).
    clock_start: str | None = None
    clock_mode: ClockMode = "real"
    control_token: str | None = None
    webhook_allow: tuple[str, ...] = ()
    max_workspaces: int = 10_000
    idle_workspace_seconds: int = 24 * 3600
    # A request body must arrive within this many seconds of the request head (else 408): a
    # client trickling a body in (slowloris) cannot hold a request open.
    body_timeout: float = 30.0
    # Connexion's response validation: on in tests so the fake cannot drift from its contract.
    validate_responses: bool = False
    background_ticker: bool = True
    spec_dir: Path = field(default=SPEC_DIR)
    fixture_dir: Path = field(default=FIXTURE_DIR)

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: object) -> Settings:
        """Read SANDBOX_<FIELD> variables; explicit overrides (CLI flags) win."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            raw = env.get(f"SANDBOX_{f.name.upper()}")
            if raw is None:
                continue
            values[f.name] = _coerce(f.name, raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]


def _coerce(name: str, raw: str) -> object:
    if name in {"port", "seed", "max_workspaces", "idle_workspace_seconds"}:
        return int(raw)
    if name == "body_timeout":
        return float(raw)
    if name in {"validate_responses", "background_ticker"}:
        return raw.lower() in {"1", "true", "yes", "on"}
    if name == "webhook_allow":
        return tuple(h.strip() for h in raw.split(",") if h.strip())
    if name in {"spec_dir", "fixture_dir"}:
        return Path(raw)
    return raw
