"""`sandbox serve` defers the third-party modules Connexion imports but the server never uses:
they stay out of start-up, and everything that does touch them still gets the real module."""

from __future__ import annotations

import subprocess
import sys
import textwrap

# Run in a fresh interpreter: stand-ins in this process's sys.modules would leak into others.
_SCRIPT = textwrap.dedent("""
    import sys, warnings
    warnings.simplefilter("ignore")
    from sandbox import deferred
    assert deferred.install() == ["httpx", "requests", "starlette.testclient"]
    from sandbox.app import create_app
    from sandbox.settings import Settings
    app = create_app(Settings(background_ticker=False))
    heavy = ("rich", "click", "charset_normalizer", "urllib3", "anyio.from_thread",
             "hypothesis", "schemathesis", "defusedxml", "sandbox.http.xmlcodec")
    print("STARTUP", sorted(m for m in heavy if m in sys.modules))
    print("STAND-INS", sorted(n for n in deferred.DEFERRED
                               if isinstance(sys.modules[n], deferred._Deferred)))

    # Whatever touches them gets the real thing: Connexion's test client, httpx, requests.
    with app.test_client() as client:
        page = client.get("/inboxapp/__docs/openapi.json")
        assert page.status_code == 200 and page.json()["openapi"] == "3.0.3", page.text
    import httpx, requests, starlette.testclient
    assert type(httpx.Client).__name__ == "type" and callable(requests.get)
    assert starlette.testclient.TestClient.__mro__[1] is httpx.Client
    import connexion.security
    assert connexion.security.httpx.AsyncClient is httpx.AsyncClient  # bound to the stand-in
    print("REAL", sorted(n for n in deferred.DEFERRED
                          if isinstance(sys.modules[n], deferred._Deferred)))
""")


def test_serve_start_up_defers_unused_modules_and_they_still_work_when_used() -> None:
    out = subprocess.run([sys.executable, "-c", _SCRIPT], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "STARTUP []" in lines, out.stdout
    assert "STAND-INS ['httpx', 'requests', 'starlette.testclient']" in lines, out.stdout
    assert "REAL []" in lines, out.stdout


def test_install_leaves_modules_already_imported_alone() -> None:
    script = ("import httpx, sys\nfrom sandbox import deferred\n"
              "print(deferred.install())\nassert sys.modules['httpx'] is httpx\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['requests', 'starlette.testclient']"
