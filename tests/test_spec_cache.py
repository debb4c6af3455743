"""Specs parsed once per content and read back as JSON from the user's cache: the same data as
the YAML, a private copy per call, and no harm when the cache is missing, damaged or read-only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from sandbox import specs
from sandbox.settings import SPEC_DIR


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    specs._parse.cache_clear()
    yield tmp_path / "cache" / "import-sandbox" / "specs"
    specs._parse.cache_clear()


def _yaml(path: Path) -> object:
    return yaml.load(path.read_bytes(), Loader=yaml.CSafeLoader)


def test_every_shipped_spec_reads_back_as_its_yaml_and_is_cached(cache: Path) -> None:
    for path in sorted(SPEC_DIR.glob("*.yaml")):
        assert specs.load_spec(path) == _yaml(path), path.name
    assert len(list(cache.glob("*.json"))) == len(list(SPEC_DIR.glob("*.yaml")))
    specs._parse.cache_clear()  # a new process: read from the cache this time
    for path in sorted(SPEC_DIR.glob("*.yaml")):
        assert specs.load_spec(path) == _yaml(path), path.name


def test_each_call_gets_a_private_copy(cache: Path) -> None:
    path = SPEC_DIR / "inboxapp.yaml"
    first = specs.load_spec(path)
    first["paths"].clear()
    assert specs.load_spec(path)["paths"]


def test_a_damaged_cache_entry_is_parsed_again_and_replaced(cache: Path) -> None:
    path = SPEC_DIR / "leadlex.yaml"
    specs.load_spec(path)
    (entry,) = cache.glob("*.json")
    entry.write_text('{"openapi": "3.0.3", "pa')
    specs._parse.cache_clear()
    assert specs.load_spec(path) == _yaml(path)
    assert entry.read_text().startswith('{"openapi"') and len(entry.read_text()) > 100


def test_a_spec_changed_on_disk_is_a_new_entry(cache: Path, tmp_path: Path) -> None:
    path = tmp_path / "api.yaml"
    path.write_text("openapi: 3.0.3\ninfo: {title: a, version: '1'}\npaths: {}\n")
    assert specs.load_spec(path)["info"]["title"] == "a"
    path.write_text("openapi: 3.0.3\ninfo: {title: b, version: '1'}\npaths: {}\n")
    assert specs.load_spec(path)["info"]["title"] == "b"
    assert len(list(cache.glob("*.json"))) == 2


def test_yaml_json_cannot_hold_is_served_as_parsed_and_not_cached(cache: Path,
                                                                   tmp_path: Path) -> None:
    path = tmp_path / "api.yaml"
    path.write_text("openapi: 3.0.3\npaths: {}\nx-codes: {200: ok}\nx-day: 2024-01-02\n")
    spec = specs.load_spec(path)
    assert spec["x-codes"] == {200: "ok"} and str(spec["x-day"]) == "2024-01-02"
    assert not cache.exists() or not list(cache.glob("*.json"))


def test_an_unwritable_cache_directory_only_costs_time(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    specs._parse.cache_clear()
    try:
        path = SPEC_DIR / "smartlead.yaml"
        assert specs.load_spec(path) == _yaml(path)
    finally:
        specs._parse.cache_clear()
