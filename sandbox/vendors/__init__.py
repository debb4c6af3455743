"""The vendor registry: one entry per vendor face. Adding a vendor = its spec, its module, its
fixtures, its tests, and one line in FACES."""

from __future__ import annotations

import importlib
import re
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from functools import cached_property
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs

# A key any vendor accepts in `open` auth mode: printable, no spaces, bounded length.
WELL_FORMED_KEY = re.compile(r"^[A-Za-z0-9_.\-]{4,200}$")
DEMO_KEY = "wbk_sandbox_demo"


@dataclass(frozen=True)
class RateWindow:
    name: str
    seconds: int
    limit: int
    # "sliding" counts the last `seconds`; "utc_day" resets at midnight UTC (Leadlex).
    kind: str = "fixed"


@dataclass(frozen=True)
class VendorFace:
    name: str
    title: str
    prefix: str
    real_base_url: str
    spec_file: str
    key_in: str  # "bearer" or "query:<name>"
    key_prefix: str = ""
    rate_limits: dict[str, tuple[RateWindow, ...]] = field(default_factory=dict)
    default_rate_plan: str = "default"
    request_id_header: str | None = None

    @cached_property
    def module(self) -> ModuleType:
        return importlib.import_module(f"sandbox.vendors.{self.name}")

    def owns(self, path: str) -> bool:
        return path == self.prefix or path.startswith(self.prefix + "/")

    def key_from(self, scope: MutableMapping[str, Any]) -> str | None:
        """The API key a request carries, exactly as sent (None when absent)."""
        if self.key_in == "bearer":
            for name, value in scope.get("headers", []):
                if name == b"authorization":
                    text = value.decode("latin-1").strip()
                    if text[:7].lower() == "bearer ":
                        return text[7:].strip() or None
                    return None
            return None
        param = self.key_in.split(":", 1)[1]
        values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get(param)
        return values[0] if values else None

    def key_is_well_formed(self, key: str) -> bool:
        return bool(WELL_FORMED_KEY.match(key)) and key.startswith(self.key_prefix)

    def error_body(self, err: Any) -> Any:
        return self.module.error_body(err)


_MIN, _HOUR, _DAY = 60, 3600, 86400

FACES: tuple[VendorFace, ...] = (
    VendorFace("inboxapp", "InboxApp", "/inboxapp", "https://inboxapp.com/api/v1",
               "inboxapp.yaml", "bearer",
               rate_limits={"default": (RateWindow("minute", _MIN, 300, "sliding"),
                                        RateWindow("hour", _HOUR, 10_000, "sliding"),
                                        RateWindow("day", _DAY, 100_000, "sliding"))}),
    VendorFace("leadlex", "Leadlex", "/leadlex",
               "https://data.leadlex.com/functions/v1/api-gateway", "leadlex.yaml", "bearer",
               key_prefix="wbk_", default_rate_plan="org", request_id_header="X-Request-ID",
               rate_limits={
                   "starter": (RateWindow("minute", _MIN, 10), RateWindow("day", _DAY, 100,
                                                                          "utc_day")),
                   "pro": (RateWindow("minute", _MIN, 50), RateWindow("day", _DAY, 1000,
                                                                      "utc_day")),
                   "org": (RateWindow("minute", _MIN, 200), RateWindow("day", _DAY, 10_000,
                                                                       "utc_day"))}),
    VendorFace("which50", "Which50", "/which50", "https://app.which50.com/Which50API",
               "which50.yaml", "bearer"),
    VendorFace("smartlead", "Smartlead", "/smartlead", "https://server.smartlead.ai/api/v1",
               "smartlead.yaml", "query:api_key",
               rate_limits={"default": (RateWindow("2s", 2, 10, "sliding"),)}),
)


def face_for_path(path: str) -> VendorFace | None:
    for face in FACES:
        if face.owns(path):
            return face
    return None


def face(name: str) -> VendorFace:
    for f in FACES:
        if f.name == name:
            return f
    raise KeyError(name)
