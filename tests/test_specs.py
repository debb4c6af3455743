"""Every contract validates with openapi-spec-validator and every fixture file with its schema."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from openapi_spec_validator import validate

from sandbox.core.fixtures import FixtureError, load_dir
from sandbox.core.fixtures import validate as validate_fixture
from sandbox.http.gateway import normalise_array_query
from sandbox.settings import FIXTURE_DIR, SPEC_DIR
from sandbox.vendors import FACES

SPECS = sorted(SPEC_DIR.glob("*.yaml"))


@pytest.mark.parametrize("path", SPECS, ids=lambda p: p.name)
def test_spec_is_valid_openapi_303(path: Path) -> None:
    spec = yaml.safe_load(path.read_text())
    validate(spec)
    assert spec["openapi"] == "3.0.3"


def test_every_vendor_has_a_spec_with_sources_and_a_body_limit() -> None:
    names = {p.name for p in SPECS}
    for face in FACES:
        assert face.spec_file in names
        info = yaml.safe_load((SPEC_DIR / face.spec_file).read_text())["info"]
        assert info["x-sources"], face.name
        assert int(info["x-sandbox-max-body-bytes"]) > 0


def test_every_spec_marks_its_assumptions() -> None:
    for face in FACES:
        assert "x-sandbox-assumed" in (SPEC_DIR / face.spec_file).read_text(), face.name


def test_every_operation_has_an_operation_id_and_a_default_or_error_responses() -> None:
    for path in SPECS:
        spec = yaml.safe_load(path.read_text())
        for route, item in spec["paths"].items():
            for method, op in item.items():
                if method not in {"get", "post", "put", "patch", "delete"}:
                    continue
                assert op.get("operationId"), f"{path.name} {method} {route}"
                codes = set(op["responses"])
                assert "default" in codes or any(c.startswith("4") for c in codes)


def test_fixtures_load_and_cover_every_vendor() -> None:
    docs = load_dir(FIXTURE_DIR)
    assert {d["vendor"] for d in docs} == {f.name for f in FACES}


def test_a_bad_fixture_names_the_field() -> None:
    with pytest.raises(FixtureError, match="lists/0"):
        validate_fixture({"vendor": "smartlead", "lists": [{"name": "no id"}]})


def test_array_query_encodings_are_normalised() -> None:
    assert normalise_array_query(b"status[]=running&status[]=queued&limit=5") == (
        b"status=running&status=queued&limit=5")
    assert normalise_array_query(b"status%5B0%5D=running&status%5B1%5D=paused") == (
        b"status=running&status=paused")
