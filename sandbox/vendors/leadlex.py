"""leadlex face: placeholder handlers (being written)."""

from __future__ import annotations

from typing import Any

from sandbox.core.errors import Internal, SandboxError

STATUS_NAMES: dict[str, str] = {}


def error_body(err: SandboxError) -> dict[str, Any]:
    return {"error": {"code": err.code, "message": err.message}}


async def import_contacts(**kwargs: Any) -> Any:
    raise Internal('not implemented yet')


async def create_contact(**kwargs: Any) -> Any:
    raise Internal('not implemented yet')


async def list_contacts(**kwargs: Any) -> Any:
    raise Internal('not implemented yet')


async def bulk_create_contacts(**kwargs: Any) -> Any:
    raise Internal('not implemented yet')


async def create_list(**kwargs: Any) -> Any:
    raise Internal('not implemented yet')


async def create_webhook(**kwargs: Any) -> Any:
    raise Internal('not implemented yet')
