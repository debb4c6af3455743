"""which50 face: placeholder handlers (being written)."""

from __future__ import annotations

from typing import Any

from sandbox.core.errors import Internal, SandboxError

STATUS_NAMES: dict[str, str] = {}


def error_body(err: SandboxError) -> dict[str, Any]:
    return {"error": {"code": err.code, "message": err.message}}


async def list_contact_lists(**kwargs: Any) -> Any:
    raise Internal('not implemented yet')


async def get_contact_list(**kwargs: Any) -> Any:
    raise Internal('not implemented yet')


async def list_contact_list_fields(**kwargs: Any) -> Any:
    raise Internal('not implemented yet')


async def create_import_job(**kwargs: Any) -> Any:
    raise Internal('not implemented yet')


async def get_import_job(**kwargs: Any) -> Any:
    raise Internal('not implemented yet')


async def upload_import_batch(**kwargs: Any) -> Any:
    raise Internal('not implemented yet')


async def run_import_job(**kwargs: Any) -> Any:
    raise Internal('not implemented yet')
