"""Schema fuzzing with Schemathesis against a live server: every vendor spec and the control API,
all four phases (examples, coverage, fuzzing, stateful), positive and negative data.

Checks: no 5xx, every answer conforms to the spec (status, content type, headers, body: error
bodies included, so a refusal is in the vendor's envelope), negative data is refused with a 4xx,
schema-valid data is not refused outside the answers listed in ACCEPTED, a wrong credential is
refused (the server runs in strict auth mode with a control token, so that check means
something), 405s carry a correct `Allow`. Bounded: SANDBOX_FUZZ_EXAMPLES (default 15) examples
per operation and phase, a fixed seed; tests/README.md shows the long run.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
import yaml
from schemathesis.config import SchemathesisConfig

from tests.reliability.conftest import ROOT, Server, free_port

EXAMPLES = int(os.environ.get("SANDBOX_FUZZ_EXAMPLES", "15"))
# A fixed seed keeps the bounded run reproducible; the long run sets its own (or none).
SEED = os.environ.get("SANDBOX_FUZZ_SEED", "20250115")
KEY = "wbk_fuzz_reliability"
CONTROL_TOKEN = "ctl_fuzz_reliability"
# Known before the server starts: Schemathesis builds its tests at import time.
PORT = free_port()
BASE = f"http://127.0.0.1:{PORT}"
# Statuses with which schema-valid data may still be refused: unknown ids (404), state
# (409: a job no longer cancelable), rules a JSON schema cannot express (422; and 400 where
# the vendor answers them so: Leadlex's "a list with this name already exists" and "map a
# column to email or phone", Which50's field names that are not the list's).
ACCEPTED = ["2XX", "400", "404", "409", "422"]
AUTH = {
    "inboxapp": {"bearerAuth": {"bearer": KEY}},
    "leadlex": {"bearerAuth": {"bearer": KEY}},
    "which50": {"bearerAuth": {"bearer": KEY}},
    "smartlead": {"apiKeyQuery": {"api_key": KEY}},
    "sandbox": {"controlBearer": {"bearer": CONTROL_TOKEN}},
}
PREFIX = {"inboxapp": "/inboxapp", "leadlex": "/leadlex", "which50": "/which50",
          "smartlead": "/smartlead", "sandbox": "/__sandbox"}
# Links the Leadlex docs imply but Schemathesis cannot infer (no location headers, no shared
# parameter names): a created list's id filters the contact listing.
LEADLEX_LINKS = {
    ("/v1/lists", "post", "201"): {"ContactsOfList": {
        "operationId": "listContacts", "parameters": {"list_id": "$response.body#/data/id"}}},
    ("/v1/contacts", "post", "201"): {"FindContact": {
        "operationId": "listContacts", "parameters": {"search": "$response.body#/data/email"}}},
}


def load(vendor: str) -> Any:
    spec = yaml.safe_load((ROOT / "openapi" / f"{vendor}.yaml").read_text())
    if vendor == "leadlex":
        spec = with_links(spec, LEADLEX_LINKS)
    config = SchemathesisConfig.from_dict({
        **({"seed": int(SEED)} if SEED else {}),
        "suppress-health-check": ["too_slow", "filter_too_much", "data_too_large",
                                  "large_base_example"],
        "base-url": BASE + PREFIX[vendor],
        "auth": {"openapi": AUTH[vendor]},
        "generation": {"mode": "all", "max-examples": EXAMPLES},
        "phases": {"examples": {"fill-missing": True}},
        "checks": {
            "positive_data_acceptance": {"expected-statuses": ACCEPTED},
            "negative_data_rejection": {"expected-statuses": ["4XX"]},
            # Generous: a loaded CI machine, and some answers settle a job of 20 000 rows.
            "max_response_time": 10.0,
        },
    })
    return schemathesis.openapi.from_dict(spec, config=config)


def with_links(spec: dict[str, Any], links: dict[tuple[str, str, str], Any]) -> dict[str, Any]:
    spec = copy.deepcopy(spec)
    for (path, method, status), link in links.items():
        response = spec["paths"][path][method]["responses"][status]
        if "$ref" in response:
            name = response["$ref"].rsplit("/", 1)[-1]
            response = copy.deepcopy(spec["components"]["responses"][name])
            spec["paths"][path][method]["responses"][status] = response
        response.setdefault("links", {}).update(link)
    return spec


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Strict auth (only KEY is a workspace) and a control token, so that Schemathesis's
    wrong-credential probes must be refused; rate limits off, so a fuzzer is not throttled."""
    where: Path = tmp_path_factory.mktemp("fuzz")
    keys = where / "keys.txt"
    keys.write_text(KEY + "\n")
    srv = Server(where / "s.db", "--auth", "strict", "--keys-file", str(keys),
                 "--control-token", CONTROL_TOKEN)
    srv.port, srv.url = PORT, BASE
    srv.start()
    yield srv
    srv.stop()
    assert "Traceback" not in srv.log.read_text(errors="replace"), srv.log_text()


inboxapp, leadlex, which50, smartlead, control = (
    load(v) for v in ("inboxapp", "leadlex", "which50", "smartlead", "sandbox"))


@inboxapp.parametrize()
def test_inboxapp(case: Any, fuzz_server: Server) -> None:
    case.call_and_validate()


@leadlex.parametrize()
def test_leadlex(case: Any, fuzz_server: Server) -> None:
    case.call_and_validate()


@which50.parametrize()
def test_which50(case: Any, fuzz_server: Server) -> None:
    case.call_and_validate()


@smartlead.parametrize()
def test_smartlead(case: Any, fuzz_server: Server) -> None:
    case.call_and_validate()


@control.parametrize()
def test_control_api(case: Any, fuzz_server: Server) -> None:
    case.call_and_validate()


STATEFUL = hypothesis.settings(
    max_examples=EXAMPLES, stateful_step_count=8, deadline=None,
    suppress_health_check=list(hypothesis.HealthCheck),
    derandomize=bool(SEED), database=None)


@pytest.mark.parametrize("schema", [inboxapp, leadlex, which50, smartlead, control],
                         ids=["inboxapp", "leadlex", "which50", "smartlead", "sandbox"])
def test_stateful_workflows(schema: Any, fuzz_server: Server) -> None:
    """Chains of calls along the specs' links (inferred, or LEADLEX_LINKS): create a job,
    read it back, cancel it, ... with every answer checked as above."""

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            # Every example starts from the same fresh workspace: the sandbox is deterministic,
            # so a replayed sequence (Hypothesis shrinking) meets the same answers.
            httpx.post(f"{BASE}/__sandbox/workspaces/{KEY}/reset", timeout=30,
                       headers={"Authorization": f"Bearer {CONTROL_TOKEN}"})

    Workflow.run(settings=STATEFUL)
