"""Serving the dashboard: the page (with the static facts it needs: vendors, their status names,
the forced transitions) and its assets. The page holds no workspace data, so it is served
without the control token; the data comes from the control API, which asks for it."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from sandbox import __version__
from sandbox.core import jobs
from sandbox.core.backend import current
from sandbox.core.errors import NotFound
from sandbox.vendors import FACES

HERE = Path(__file__).resolve().parent
STATIC = HERE / "static"
TEMPLATE = HERE / "templates" / "index.html"
CONFIG_MARK = "{{CONFIG_JSON}}"
CONTROL_PREFIX = "/__sandbox"
ASSET_TYPES = {".css": "text/css", ".js": "application/javascript"}

# The page loads nothing from elsewhere and runs no inline script: the browser enforces both.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
COMMON_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                  "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}


def page_config(token_required: bool) -> dict[str, Any]:
    """What the page needs before its first API call; static per process, no workspace data."""
    from sandbox.app import DOCS_PATH
    from sandbox.control_views import status_names

    return {
        "version": __version__,
        "apiBase": CONTROL_PREFIX,
        "tokenRequired": token_required,
        "controlDocs": f"{CONTROL_PREFIX}/docs/",
        "vendors": [{"name": f.name, "title": f.title, "prefix": f.prefix,
                     "docs": f"{f.prefix}{DOCS_PATH}/", "statusNames": status_names(f)}
                    for f in FACES],
        "statuses": list(jobs.STATUSES),
        "transitions": {s: sorted(to) for s, to in jobs.FORCED_TRANSITIONS.items()},
    }


@lru_cache(maxsize=2)
def render_page(token_required: bool) -> str:
    # `<` escaped so that no string in the data block can close its <script> element.
    data = json.dumps(page_config(token_required), separators=(",", ":")).replace("<", "\\u003c")
    return TEMPLATE.read_text(encoding="utf-8").replace(CONFIG_MARK, data)


async def get_dashboard() -> tuple[str, int, dict[str, str]]:
    html = render_page(bool(current().settings.control_token))
    return html, 200, {"Content-Type": "text/html", **COMMON_HEADERS}


async def get_dashboard_asset(asset: str) -> tuple[str, int, dict[str, str]]:
    path = (STATIC / asset).resolve()
    media_type = ASSET_TYPES.get(path.suffix)
    if media_type is None or path.parent != STATIC or not path.is_file():
        raise NotFound(f"asset: '{asset}' is not a file of the dashboard", field="asset",
                       rule="asset")
    return path.read_text(encoding="utf-8"), 200, {"Content-Type": media_type, **COMMON_HEADERS}
