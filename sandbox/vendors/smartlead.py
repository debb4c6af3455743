"""smartlead face: placeholder handlers (being written)."""

from __future__ import annotations

from typing import Any

from sandbox.core.errors import Internal, SandboxError

STATUS_NAMES: dict[str, str] = {}


def error_body(err: SandboxError) -> dict[str, Any]:
    return {"error": {"code": err.code, "message": err.message}}


async def list_lead_lists(**kwargs: Any) -> Any:
    raise Internal('not implemented yet')


async def create_lead_list(**kwargs: Any) -> Any:
    raise Internal('not implemented yet')


async def get_lead_list(**kwargs: Any) -> Any:
    raise Internal('not implemented yet')


async def import_leads_to_list(**kwargs: Any) -> Any:
    raise Internal('not implemented yet')


async def get_domain_block_list(**kwargs: Any) -> Any:
    raise Internal('not implemented yet')


async def add_domain_block_list(**kwargs: Any) -> Any:
    raise Internal('not implemented yet')


async def add_campaign_leads(**kwargs: Any) -> Any:
    raise Internal('not implemented yet')
