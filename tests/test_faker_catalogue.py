"""Faker's catalogue read from the user's cache on `sandbox serve`: the same lists Faker's own
scan gives, kept per installation, and no harm when the cache is missing, damaged or unwritable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from sandbox import faker_catalogue

# Run in a fresh interpreter each time: install() acts before Faker's first import.
_SCRIPT = textwrap.dedent("""
    import json, sys
    from importlib import import_module
    from sandbox import faker_catalogue
    used = faker_catalogue.install()
    import faker.config
    from faker.utils.loading import find_available_locales, find_available_providers
    scanned = find_available_providers([import_module("faker.providers")])
    from sandbox.core import fakes
    print(json.dumps({
        "used": used,
        "stand_in": faker.config is sys.modules["faker.config"]
                    and faker.config.__name__ == "faker.config",
        "providers_match": faker.config.PROVIDERS == scanned,
        "locales_match": faker.config.AVAILABLE_LOCALES == find_available_locales(scanned),
        "default": faker.config.DEFAULT_LOCALE,
        "person": fakes.person(1234, "wbk_demo", "lead-1"),
    }))
""")


def _serve_start(cache: Path) -> dict[str, object]:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    out = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True,
                         timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_the_second_start_reads_the_catalogue_faker_would_have_scanned(tmp_path: Path) -> None:
    first = _serve_start(tmp_path)
    (entry,) = (tmp_path / "import-sandbox" / "faker").glob("faker-*.json")
    second = _serve_start(tmp_path)
    assert first["used"] is False and second["used"] is True
    for start in (first, second):
        assert start["stand_in"] and start["providers_match"] and start["locales_match"]
        assert start["default"] == "en_US"
    assert second["person"] == first["person"]  # the same draws either way
    stored = json.loads(entry.read_text())
    assert len(stored["PROVIDERS"]) > 20 and "en_US" in stored["AVAILABLE_LOCALES"]


def test_a_damaged_entry_is_scanned_again_and_replaced(tmp_path: Path) -> None:
    _serve_start(tmp_path)
    (entry,) = (tmp_path / "import-sandbox" / "faker").glob("faker-*.json")
    for damage in ('{"PROVIDERS": ["faker.prov', '{"PROVIDERS": []}', '["a"]',
                   '{"DEFAULT_LOCALE": "en_US", "PROVIDERS": [], "AVAILABLE_LOCALES": []}',
                   '{"DEFAULT_LOCALE": "en_US", "PROVIDERS": ["faker.providers.person"], '
                   '"AVAILABLE_LOCALES": ["de_DE"]}'):
        entry.write_text(damage)
        start = _serve_start(tmp_path)
        assert start["used"] is False and start["providers_match"], damage
        assert "AVAILABLE_LOCALES" in json.loads(entry.read_text())
    assert _serve_start(tmp_path)["used"] is True


def test_a_cache_that_is_a_file_only_costs_time(tmp_path: Path) -> None:
    (tmp_path / "import-sandbox").write_text("not a folder")
    for _ in range(2):
        start = _serve_start(tmp_path)
        assert start["used"] is False and start["providers_match"]


def test_the_fingerprint_follows_every_folder_the_scan_reads(tmp_path: Path) -> None:
    root = tmp_path / "faker"
    (root / "providers" / "person" / "en_US").mkdir(parents=True)
    (root / "__init__.py").write_text('VERSION = "1"\n')
    before = faker_catalogue.fingerprint(root)
    assert faker_catalogue.fingerprint(root) == before
    changes = [
        lambda: (root / "providers" / "person" / "fr_FR").mkdir(),  # a locale added
        lambda: (root / "providers" / "job").mkdir(),  # a provider added
        lambda: (root / "__init__.py").write_text('VERSION = "22"\n'),  # another version
    ]
    seen = {before}
    for change in changes:
        change()
        now = faker_catalogue.fingerprint(root)
        assert now not in seen
        seen.add(now)


def test_install_leaves_an_imported_faker_alone() -> None:
    script = ("import faker, sys\nfrom sandbox import faker_catalogue\n"
              "config = sys.modules['faker.config']\n"
              "assert faker_catalogue.install() is False\n"
              "assert sys.modules['faker.config'] is config\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
