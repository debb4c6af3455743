"""Deterministic identifiers: the same seed, workspace and counter always give the same id."""

from __future__ import annotations

import hashlib
import uuid

_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def digest(*parts: object) -> bytes:
    return hashlib.sha256("\x1f".join(str(p) for p in parts).encode()).digest()


def seed_int(*parts: object) -> int:
    """A 64-bit integer derived from the parts, for seeding Faker and random.Random."""
    return int.from_bytes(digest(*parts)[:8], "big")


def cuid(*parts: object, length: int = 24) -> str:
    """A cuid2-like id (lowercase base36, starts with a letter), e.g. l44e15irdq4db30i77cgphhx:
    a letter from the digest modulo 26, then base-36 digits of the rest, lowest first."""
    n = int.from_bytes(digest(*parts), "big")
    chars = [_BASE36[10 + n % 26]]
    n //= 26
    # Eight digits per division of the 250-bit number; the rest on machine-sized integers.
    while len(chars) < length:
        n, chunk = divmod(n, _CHUNK)
        for _ in range(min(8, length - len(chars))):
            chunk, r = divmod(chunk, 36)
            chars.append(_BASE36[r])
    return "".join(chars)


_CHUNK = 36**8


def uuid_for(*parts: object) -> str:
    return str(uuid.UUID(bytes=digest(*parts)[:16], version=4))


def hex_token(*parts: object, length: int = 32) -> str:
    return digest(*parts).hex()[:length]
