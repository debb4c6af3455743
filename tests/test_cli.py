"""The command line: `serve` prints where each vendor lives and a working key; `check` passes;
each vendor's Swagger UI is served under its prefix."""

from __future__ import annotations

from typing import Any

from sandbox.cli import banner, build_parser, check, settings_from
from sandbox.settings import Settings
from sandbox.vendors import DEMO_KEY, FACES


def test_banner_names_every_vendor_base_url_and_the_demo_key() -> None:
    text = banner(Settings(host="127.0.0.1", port=8080))
    for face in FACES:
        assert f"http://127.0.0.1:8080{face.prefix}" in text
        assert face.real_base_url in text
    assert DEMO_KEY in text and DEMO_KEY.startswith("wbk_")


def test_serve_flags_become_settings() -> None:
    args = build_parser().parse_args([
        "serve", "--host", "0.0.0.0", "--port", "9001", "--db", "sqlite:///x.db", "--seed", "7",
        "--rate-limits", "off", "--frozen", "--clock-start", "2025-01-15T10:00:00Z",
        "--webhook-allow", "hooks.internal"])
    s = settings_from(args)
    assert (s.host, s.port, s.db_url, s.seed, s.rate_limits, s.clock_mode) == (
        "0.0.0.0", 9001, "sqlite:///x.db", 7, "off", "frozen")
    assert s.webhook_allow == ("hooks.internal",)


def test_check_validates_specs_and_fixtures(capsys: Any) -> None:
    assert check() == 0
    out = capsys.readouterr().out
    assert "ok      inboxapp.yaml" in out and "fixtures (4 files)" in out


def test_demo_key_works_and_each_vendor_has_its_swagger_ui(client: Any) -> None:
    ok = client.get("/which50/contactLists", headers={"Authorization": f"Bearer {DEMO_KEY}"})
    assert ok.status_code == 200
    for face in FACES:
        page = client.get(f"{face.prefix}/__docs/")
        assert page.status_code == 200 and "swagger" in page.text.lower(), face.name
        spec = client.get(f"{face.prefix}/__docs/openapi.json")
        assert spec.status_code == 200 and spec.json()["openapi"] == "3.0.3"
