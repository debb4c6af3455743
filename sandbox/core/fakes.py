"""Realistic fake data (Faker), always derived from (seed, workspace, resource) so runs repeat."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from faker import Faker

from sandbox.core.clock import iso
from sandbox.core.ids import cuid, seed_int

# Usernames that resolve to accounts which cannot be imported: suspended, deleted, invalid.
UNRESOLVABLE_PREFIXES = ("suspended_", "deleted_", "invalid_")
_HANDLE = re.compile(r"^[A-Za-z0-9_]{1,15}$")
# Accounts were created between 2008-01-01 and 2024-07-01 (UTC): a fixed range, so that an
# account looks the same whenever it is resolved; only firstSeenAt/lastUpdatedAt follow the clock.
_ACCOUNTS_FROM = 1_199_145_600
_ACCOUNTS_SPAN = 1_719_792_000 - _ACCOUNTS_FROM


# The providers whose methods the sandbox calls (and those methods call), in Faker's own order:
# `Faker("en_US")` with these draws exactly what it draws with all 26 (tests/core/test_fakes.py
# checks every method the sandbox calls), and builds in a third of the time, without scanning
# the other providers' locale folders (a tenth of the server's start-up).
PROVIDERS = ("faker.providers.address", "faker.providers.company", "faker.providers.internet",
             "faker.providers.job", "faker.providers.lorem", "faker.providers.person")


@lru_cache(maxsize=1)
def _faker() -> Faker:
    # Building a Faker is slow (providers load); one instance, re-seeded per use, is enough.
    return Faker("en_US", providers=list(PROVIDERS))


def faker_for(*parts: object) -> Faker:
    fake = _faker()
    fake.seed_instance(seed_int(*parts))
    return fake


def person(seed: int, workspace: str, resource: str) -> dict[str, Any]:
    """A business contact: names, email, phone, company, title."""
    fake = faker_for(seed, workspace, "person", resource)
    first, last = fake.first_name(), fake.last_name()
    company = fake.company()
    domain = re.sub(r"[^a-z0-9]+", "", company.lower())[:20] or "example"
    return {
        "first_name": first,
        "last_name": last,
        "full_name": f"{first} {last}",
        "email": f"{first.lower()}.{last.lower()}@{domain}.com",
        "phone": "+1" + "".join(str(fake.random_int(0, 9)) for _ in range(10)),
        "company": company,
        "job_title": fake.job(),
        "location": f"{fake.city()}, {fake.state_abbr()}",
        "website": f"https://{domain}.com",
        "linkedin_url": f"https://www.linkedin.com/in/{first.lower()}-{last.lower()}",
    }


def is_resolvable_username(username: str) -> bool:
    handle = username.lstrip("@")
    return bool(_HANDLE.match(handle)) and not handle.lower().startswith(UNRESOLVABLE_PREFIXES)


def x_profile(seed: int, workspace: str, *, username: str | None = None,
              platform_id: str | None = None, now: float) -> dict[str, Any]:
    """An X (Twitter) account shaped like InboxApp's Prospect. Either identifier may be given;
    the other is derived so that the same account always has the same id and handle."""
    return stamped(*x_profile_parts(seed, workspace, username, platform_id), now)


def x_profile_parts(seed: int, workspace: str, username: str | None, platform_id: str | None
                    ) -> tuple[dict[str, Any], float]:
    """x_profile without its instants (shared: only read) and when the account was created:
    `stamped(*parts, now)` is x_profile at `now`. Remembered, like the account's draws."""
    key = (seed, workspace, username, platform_id)
    known = _PARTS.get(key)
    if known is None:
        a = _account(seed, username, platform_id)
        known = ({
            "platform": "twitter",
            "platformId": a.pid,
            "externalId": _external_id(seed, workspace, a.pid),
            "displayName": a.display_name,
            "username": a.handle,
            "handle": "@" + a.handle,
            "image": f"https://pbs.twimg.com/profile_images/{a.pid[-10:]}/photo_400x400.jpg",
            "bio": a.bio,
            "location": a.location,
            "profileUrl": f"https://x.com/{a.handle}",
            "websiteUrl": f"https://{a.site}",
            "websiteDomain": a.site,
            "verified": a.verified,
            "profileType": "business" if a.business else "personal",
            "isProtected": a.protected,
            "followerCount": a.followers,
            "followingCount": a.following,
            "postCount": a.posts,
        }, float(_ACCOUNTS_FROM + a.created_offset))
        if len(_PARTS) >= 16_384:
            _PARTS.clear()
        _PARTS[key] = known
    return known


_PARTS: dict[tuple[int, str, str | None, str | None], tuple[dict[str, Any], float]] = {}


def stamped(head: dict[str, Any], created: float, now: float) -> dict[str, Any]:
    """A new profile: `head` (from x_profile_parts) with the instants as of `now`."""
    seen = iso(now)
    return {**head, "platformCreatedAt": iso(min(created, now - 86400)), "firstSeenAt": seen,
            "lastUpdatedAt": seen}


@lru_cache(maxsize=16_384)
def _external_id(seed: int, workspace: str, pid: str) -> str:
    return cuid(seed, workspace, "prospect", pid)


@dataclass(frozen=True)
class _Account:
    pid: str
    handle: str
    business: bool
    site: str
    created_offset: int
    display_name: str
    bio: str
    location: str
    verified: str
    protected: bool
    followers: int
    following: int
    posts: int


@lru_cache(maxsize=16_384)
def _account(seed: int, username: str | None, platform_id: str | None) -> _Account:
    """What Faker derives for an account, drawn once per process: the same account is resolved
    again and again (every import of a list names it) and Faker takes ~1 ms per account. The
    draws are made in the order x_profile always made them, so the values are unchanged."""
    key = (username or "").lower().lstrip("@") or f"id:{platform_id}"
    fake = faker_for(seed, "x-profile", key)
    first, last = fake.first_name(), fake.last_name()
    handle = (username or "").lstrip("@").lower() or re.sub(
        r"[^a-z0-9_]", "", f"{first}{last}{fake.random_int(1, 999)}".lower())[:15]
    pid = platform_id or str(1_000_000_000_000_000_000 + seed_int("pid", key) % 10**18)
    business = fake.random_int(0, 9) == 0
    site = re.sub(r"[^a-z0-9]+", "", fake.company().lower())[:18] + ".com"
    created_offset = fake.random_int(0, _ACCOUNTS_SPAN)
    display_name = f"{first} {last}" if not business else fake.company()
    bio = fake.sentence(nb_words=12)
    location = f"{fake.city()}, {fake.state_abbr()}"
    verified = "business" if business else ("verified" if fake.random_int(0, 6) == 0
                                            else "none")
    protected = fake.random_int(0, 19) == 0
    return _Account(pid=pid, handle=handle, business=business, site=site,
                    created_offset=created_offset, display_name=display_name, bio=bio,
                    location=location, verified=verified, protected=protected,
                    followers=fake.random_int(3, 250_000), following=fake.random_int(10, 5000),
                    posts=fake.random_int(0, 80_000))


def audience(seed: int, workspace: str, source: str, count: int, now: float
             ) -> list[dict[str, Any]]:
    """`count` distinct fake followers (or likers) of a target account or post."""
    fake = faker_for(seed, workspace, "audience", source)
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    i = 0
    while len(out) < count:
        i += 1
        name = re.sub(r"[^a-z0-9_]", "", (fake.user_name() + str(i % 97)).lower())[:15]
        if name in seen or not name:
            continue
        seen.add(name)
        out.append(x_profile(seed, workspace, username=name, now=now))
    return out
