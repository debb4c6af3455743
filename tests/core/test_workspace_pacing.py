"""Workspace.pacing: the defaults are handed out as they are (frozen, shared), and every
combination of overrides gives what the field-by-field rebuild gave."""

from __future__ import annotations

import itertools
from typing import Any

from sandbox.core.clock import Clock
from sandbox.core.jobs import Pacing
from sandbox.core.workspaces import DEFAULT_PACING, Workspace


def reference_pacing(settings: dict[str, Any], vendor: str, kind: str | None) -> Pacing:
    overrides = settings.get("pacing", {})
    for name in ([f"{vendor}.{kind}"] if kind else []) + [vendor]:
        if name in overrides or name in DEFAULT_PACING:
            base = DEFAULT_PACING.get(name, Pacing())
            o = overrides.get(name, {})
            return Pacing(queue_wait=o.get("queue_wait", base.queue_wait),
                          start_delay=o.get("start_delay", base.start_delay),
                          rows_per_second=o.get("rows_per_second", base.rows_per_second))
    return Pacing(rows_per_second=100)


def _ws(settings: dict[str, Any]) -> Workspace:
    return Workspace("w", Clock.starting_at(0.0, frozen=True), 0.0, 1, settings)


def test_pacing_matches_the_field_by_field_rebuild() -> None:
    names = ["inboxapp.csv", "inboxapp", "leadlex", "other", "other.x", "which50"]
    values: list[dict[str, Any]] = [{}, {"queue_wait": 0}, {"rows_per_second": None},
                                    {"queue_wait": 1, "start_delay": 0.5, "rows_per_second": 3}]
    calls = [("inboxapp", "csv"), ("inboxapp", "likes"), ("inboxapp", None), ("leadlex", None),
             ("leadlex", "x"), ("other", "x"), ("other", None), ("smartlead", None)]
    checked = 0
    for chosen in itertools.chain([()], itertools.combinations(names, 1),
                                  itertools.combinations(names, 2)):
        for value in values:
            settings = {"pacing": dict.fromkeys(chosen, value)} if chosen else {}
            for vendor, kind in calls:
                assert _ws(settings).pacing(vendor, kind) == reference_pacing(
                    settings, vendor, kind), (settings, vendor, kind)
                checked += 1
    assert checked > 500


def test_defaults_are_shared_not_rebuilt() -> None:
    assert _ws({}).pacing("inboxapp", "csv") is DEFAULT_PACING["inboxapp.csv"]
    assert _ws({"pacing": {"leadlex": {}}}).pacing("leadlex") is DEFAULT_PACING["leadlex"]
