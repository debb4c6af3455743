"""Handlers of the control API (openapi/sandbox.yaml): the sandbox under the test's control."""

from __future__ import annotations

from typing import Any

from sandbox import __version__
from sandbox.core.backend import current
from sandbox.vendors import FACES


async def get_health() -> dict[str, Any]:
    return {"status": "ok", "version": __version__,
            "vendors": [{"name": f.name, "basePath": f.prefix, "realBaseUrl": f.real_base_url}
                        for f in FACES]}


async def advance_clock(workspace: str, body: dict[str, Any]) -> dict[str, Any]:
    seconds = float(body["seconds"])
    ws = current().change_clock(workspace, lambda c: c.advance(seconds))
    return ws.clock.as_dict()
