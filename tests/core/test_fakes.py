"""The sandbox's Faker, built from the providers it uses, draws what `Faker("en_US")` draws."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from faker import Faker

from sandbox.core import fakes

SANDBOX = Path(fakes.__file__).resolve().parents[1]
# Every Faker method the sandbox calls: `fake.<method>(` wherever a Faker is named `fake`.
CALLED = sorted({m for path in SANDBOX.rglob("*.py")
                 for m in re.findall(r"\bfake\.(\w+)\(", path.read_text(encoding="utf-8"))}
                - {"seed_instance"})


def test_the_methods_found_are_the_ones_the_sandbox_calls() -> None:
    # A search that found nothing would make the comparison below vacuous.
    assert {"first_name", "last_name", "company", "job", "city", "state_abbr", "sentence",
            "user_name", "random_int"} <= set(CALLED)


@pytest.mark.parametrize("method", CALLED)
def test_each_method_draws_what_the_full_faker_draws(method: str) -> None:
    full = Faker("en_US")
    ours = fakes._faker()
    args = (10, 99) if method == "random_int" else ()
    for seed in range(400):
        full.seed_instance(seed)
        ours.seed_instance(seed)
        # Twice per seed: the second draw shows both generators moved their random state alike.
        assert [getattr(ours, method)(*args) for _ in range(2)] == [
            getattr(full, method)(*args) for _ in range(2)], (method, seed)


def test_a_person_is_the_same_as_with_the_full_faker(monkeypatch: pytest.MonkeyPatch) -> None:
    ours = [fakes.person(7, "wbk_test", f"lead{i}") for i in range(50)]
    full = Faker("en_US")
    monkeypatch.setattr(fakes, "_faker", lambda: full)
    assert [fakes.person(7, "wbk_test", f"lead{i}") for i in range(50)] == ours


def test_the_providers_are_fewer_than_fakers_own() -> None:
    import faker.config

    assert set(fakes.PROVIDERS) < set(faker.config.PROVIDERS)
    assert {p.__provider__ for p in fakes._faker().providers} == set(fakes.PROVIDERS)
