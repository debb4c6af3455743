"""Parsed OpenAPI specs for create_app: YAML parsed once per content, then read back as JSON."""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import yaml

# Parsing the five specs' YAML (240 KB) is ~45 ms of every start-up, reading the same data as
# JSON ~2 ms: the JSON is kept in the user's cache directory, named after the YAML's hash (a
# changed spec is a new entry). Nothing is cached when that directory cannot be written.
CACHE_FORMAT = 1


def cache_root() -> Path | None:
    """The sandbox's folder in the user's cache directory (None without a home directory)."""
    base = os.environ.get("XDG_CACHE_HOME")
    try:
        root = Path(base) if base else Path.home() / ".cache"
    except RuntimeError:  # no home directory to speak of
        return None
    return root / "import-sandbox"


def cache_dir() -> Path | None:
    root = cache_root()
    return None if root is None else root / "specs"


def load_spec(path: Path) -> dict[str, Any]:
    """A private copy of a parsed spec (Connexion resolves references in place)."""
    parsed = _parse(str(path), path.stat().st_mtime_ns)
    if isinstance(parsed, str):
        spec = json.loads(parsed)  # a fresh copy, faster than deepcopy
        assert isinstance(spec, dict)
        return spec
    return copy.deepcopy(parsed)


@functools.lru_cache(maxsize=32)
def _parse(path: str, _mtime: int) -> str | dict[str, Any]:
    """The spec as JSON text, or as parsed when JSON cannot hold it (integer keys, dates)."""
    raw = Path(path).read_bytes()
    directory = cache_dir()
    name = f"{hashlib.sha256(raw).hexdigest()}.v{CACHE_FORMAT}.json"
    if directory is not None:
        try:
            text = (directory / name).read_text(encoding="utf-8")
            if isinstance(json.loads(text), dict):
                return text
        except (OSError, ValueError):  # absent, unreadable or damaged: parse the YAML again
            pass
    # The C loader parses ~6x faster than the pure-Python one.
    spec = yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    assert isinstance(spec, dict)
    try:
        text = json.dumps(spec)
    except (TypeError, ValueError):
        return spec
    if json.loads(text) != spec:
        return spec
    if directory is not None:
        store_text(directory, name, text)
    return text


def store_text(directory: Path, name: str, text: str) -> None:
    """Write a cache entry atomically; a directory that cannot be written keeps nothing."""
    temp = directory / f"{name}.{os.getpid()}.tmp"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        temp.write_text(text, encoding="utf-8")
        temp.replace(directory / name)  # atomic: a concurrent reader sees all of it or nothing
    except OSError:  # read-only home, full disk: start-up just stays slower
        with contextlib.suppress(OSError):
            temp.unlink(missing_ok=True)
