"""The bearer check of the Connexion mock peer: any token is accepted (it has no workspaces)."""

from __future__ import annotations

from typing import Any


def bearer_info(token: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    return {"sub": token, "scope": []}
