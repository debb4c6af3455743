"""Deterministic identifiers: the same seed, workspace and counter always give the same id."""

from __future__ import annotations

import hashlib
import uuid

_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def digest(*parts: object) -> bytes:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()


def seed_int(*parts: object) -> int:
    """A 64-bit integer derived from the parts, for seeding Faker and random.Random."""
    return int.from_bytes(digest(*parts)[:8], "big")


def cuid(*parts: object, length: int = 24) -> str:
    """A cuid2-like id (lowercase base36, starts with a letter), e.g. l44e15irdq4db30i77cgphhx:
    a letter from the digest modulo 26, then base-36 digits of the rest, lowest first."""
    n, first = divmod(int.from_bytes(digest(*parts), "big"), 26)
    pieces = [_BASE36[10 + first]]
    digits = length - 1
    # Eight digits per division of the 250-bit number, then two per table entry on machine-sized
    # integers (every job id is drawn on the request path: ~8 us digit by digit, ~2 us so).
    while digits >= 8:
        n, chunk = divmod(n, _CHUNK)
        chunk, a = divmod(chunk, 1296)
        chunk, b = divmod(chunk, 1296)
        chunk, c = divmod(chunk, 1296)
        pieces += (_PAIRS[a], _PAIRS[b], _PAIRS[c], _PAIRS[chunk])
        digits -= 8
    chunk = n % _CHUNK
    while digits > 0:  # the last few, possibly one digit more than asked (cut below)
        chunk, a = divmod(chunk, 1296)
        pieces.append(_PAIRS[a])
        digits -= 2
    return "".join(pieces)[:max(length, 1)]


_CHUNK = 36**8
# Two base-36 digits, lowest first, for each number below 36**2.
_PAIRS = [_BASE36[v % 36] + _BASE36[v // 36] for v in range(36 * 36)]


def uuid_for(*parts: object) -> str:
    return str(uuid.UUID(bytes=digest(*parts)[:16], version=4))


def hex_token(*parts: object, length: int = 32) -> str:
    return digest(*parts).hex()[:length]
