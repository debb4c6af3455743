"""Faker's catalogue (its provider modules and their locales) remembered between server starts,
instead of scanned on every import of Faker."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
import types
from pathlib import Path
from typing import Any

from sandbox import specs

# Importing Faker runs `faker.config`, which lists every provider package and every locale
# folder in each (pkgutil, ~1,600 directory reads) and imports all 26 providers: ~90 ms of
# the server's start-up, for two lists that only change when Faker is reinstalled. Those lists
# are kept in the cache directory, under a fingerprint of the folders the scan reads.
CACHE_FORMAT = 1


def _stamp(path: str) -> str:
    stat = os.stat(path)
    return f"{stat.st_mtime_ns}:{stat.st_size}"


def fingerprint(root: Path) -> str:
    """What Faker's scan depends on: the installed package (its `__init__.py`, Faker's version
    lives there), the providers folder and each provider's folder (a locale added or removed
    changes its provider folder's mtime)."""
    providers = str(root / "providers")
    parts = [str(root), _stamp(str(root / "__init__.py")), _stamp(providers)]
    with os.scandir(providers) as entries:
        folders = sorted(entry.name for entry in entries if entry.is_dir())
    parts += [f"{name}={_stamp(os.path.join(providers, name))}" for name in folders]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def install() -> bool:
    """Before Faker is first imported: put `faker.config` in sys.modules from the cache when it
    holds this installation's catalogue, then import Faker; otherwise import Faker as usual and
    keep its catalogue for the next start. Returns whether the cache was used. Meant for the
    server process, like `deferred.install` (a test suite imports Faker as usual)."""
    if "faker" in sys.modules:
        return False
    spec = importlib.util.find_spec("faker")
    root = specs.cache_root()
    if spec is None or spec.origin is None or root is None:
        return False
    try:
        name = f"faker-{fingerprint(Path(spec.origin).parent)}.v{CACHE_FORMAT}.json"
    except OSError:  # not a plain folder (a zip import): Faker scans as usual
        return False
    directory = root / "faker"
    catalogue = _read(directory / name)
    if catalogue is None:
        import faker.config

        catalogue = {key: value for key, value in vars(faker.config).items()
                     if key.isupper() and _plain(value)}
        specs.store_text(directory, name, json.dumps(catalogue))
        return False
    config = types.ModuleType("faker.config")
    config.__file__ = str(Path(spec.origin).parent / "config.py")
    vars(config).update(catalogue)
    sys.modules["faker.config"] = config
    import faker

    faker.config = config  # as an import would have set it
    return True


def _plain(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, list)
                                      and all(isinstance(v, str) for v in value))


def _read(path: Path) -> dict[str, Any] | None:
    try:
        catalogue = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # absent, unreadable or damaged: Faker scans again
        return None
    needed = {"DEFAULT_LOCALE", "PROVIDERS", "AVAILABLE_LOCALES"}
    if not (isinstance(catalogue, dict) and needed <= catalogue.keys()
            and all(isinstance(k, str) and k.isupper() and _plain(v)
                    for k, v in catalogue.items())):
        return None
    # Lists that would fail `Faker("en_US")` at the first request are not a catalogue.
    if not catalogue["PROVIDERS"] or catalogue["DEFAULT_LOCALE"] not in catalogue[
            "AVAILABLE_LOCALES"]:
        return None
    return catalogue
