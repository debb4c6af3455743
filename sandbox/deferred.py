"""Third-party modules `sandbox serve` never uses, imported only when something touches them."""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from typing import Any

# Connexion imports these at import time for features the sandbox does not use: `requests` for
# remote $refs (the specs have none), `httpx` for OAuth token introspection (the sandbox checks
# keys itself), `starlette.testclient` (which needs httpx) for `App.test_client()`. httpx pulls
# in its command line (click, rich, pygments) and requests charset_normalizer and urllib3:
# ~140 ms of the server's start-up. The sandbox's own webhook sender uses httpx: the first
# delivery imports it.
DEFERRED = ("httpx", "requests", "starlette.testclient")


class _Deferred(types.ModuleType):
    """Stands in sys.modules for a module not imported yet. The first attribute asked of it
    imports the real module, which takes its place in sys.modules; modules that bound the
    stand-in meanwhile keep working through it (every lookup is forwarded)."""

    def __getattr__(self, name: str) -> Any:
        if name == "__path__":  # the import system asks; only packages have one (set below)
            raise AttributeError(name)
        return getattr(_real(self), name)


def _real(stand_in: types.ModuleType) -> types.ModuleType:
    if sys.modules.get(stand_in.__name__) is stand_in:
        del sys.modules[stand_in.__name__]
    return importlib.import_module(stand_in.__name__)


def _test_client_module() -> _Deferred:
    # `from starlette.testclient import TestClient` (connexion.apps.abstract) reads the name at
    # import time: it gets a function building the real class's instances.
    module = _Deferred("starlette.testclient")

    def test_client(*args: Any, **kwargs: Any) -> Any:
        return _real(module).TestClient(*args, **kwargs)

    module.TestClient = test_client  # type: ignore[attr-defined]
    return module


def install(names: tuple[str, ...] = DEFERRED) -> list[str]:
    """Put stand-ins for `names` in sys.modules (those not imported yet, and installed); returns
    the names deferred. Meant for the server process only: a test suite keeps real imports."""
    done = []
    for name in names:
        if name in sys.modules:
            continue
        spec = importlib.util.find_spec(name)
        if spec is None:
            continue
        module = _test_client_module() if name == "starlette.testclient" else _Deferred(name)
        module.__spec__, module.__loader__, module.__file__ = spec, spec.loader, spec.origin
        module.__package__ = spec.parent
        if spec.submodule_search_locations is not None:
            module.__path__ = list(spec.submodule_search_locations)
        sys.modules[name] = module
        parent, _, child = name.rpartition(".")
        if parent:  # `import starlette.testclient` then reads it off the package
            setattr(sys.modules[parent], child, module)
        done.append(name)
    return done
