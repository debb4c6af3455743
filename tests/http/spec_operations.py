"""Every operation of the five shipped specs as Connexion builds it (for differential tests of
the request path against Connexion's own code)."""

from __future__ import annotations

import functools
from typing import Any

from connexion.http_facts import METHODS
from connexion.operations import OpenAPIOperation
from connexion.spec import Specification

from sandbox.app import load_spec, resolver_for
from sandbox.settings import Settings
from sandbox.vendors import FACES

SPECS = [(f.spec_file, f.module.__name__) for f in FACES] + [("sandbox.yaml", "sandbox.control")]


@functools.cache
def spec_operations() -> tuple[tuple[str, Any], ...]:
    """(a name for the test ids, the OpenAPIOperation with its handler resolved)."""
    found = []
    for filename, module in SPECS:
        spec = Specification.load(load_spec(Settings(), filename))
        resolver = resolver_for(module)
        for path, item in spec["paths"].items():
            for method in item:
                if method in METHODS:
                    op = OpenAPIOperation.from_spec(spec, path=path, method=method,
                                                    resolver=resolver)
                    found.append((f"{filename} {method.upper()} {path}", op))
    return tuple(found)
