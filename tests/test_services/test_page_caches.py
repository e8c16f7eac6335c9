"""The in-process caches behind the busiest pages: an entry is served only under the stamp it was read at,
and lapses after its time; the oldest go first past the size."""

from __future__ import annotations

import pytest

from services import dashboard, kept
from services.client_hub import FirmContact, HubCache, HubOut
from services.dashboard import ReturningCache


def _hub(firm: str) -> HubOut:
    return HubOut(tasks=[], completed=[], activity=[], contact=FirmContact(firm_name=firm))


def test_a_landing_page_is_served_only_under_its_stamp(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = HubCache(size=2, seconds=60)
    cache.put((1, 10), ("stamp", 1), _hub("Lovelace Tax"))
    served = cache.get((1, 10), ("stamp", 1))
    assert served is not None and served.contact.firm_name == "Lovelace Tax"
    assert cache.get((1, 10), ("stamp", 2)) is None  # something the page shows moved
    assert cache.get((2, 10), ("stamp", 1)) is None  # another account
    now = kept.time.monotonic()
    monkeypatch.setattr(kept.time, "monotonic", lambda: now + 61)
    assert cache.get((1, 10), ("stamp", 1)) is None  # lapsed


def test_the_oldest_landing_page_goes_first() -> None:
    cache = HubCache(size=2, seconds=60)
    for account in (1, 2, 3):
        cache.put((account, 1), (), _hub(str(account)))
    assert cache.get((1, 1), ()) is None
    assert cache.get((3, 1), ()) is not None


def test_a_returning_badge_is_remembered_for_a_while(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = ReturningCache(seconds=60, size=3)
    cache.remember(1, {10: True, 11: False})
    assert cache.known(1, [10, 11, 12]) == {10: True, 11: False}  # 12: never looked up
    assert cache.known(2, [10]) == {}  # another firm
    now = dashboard.time.monotonic()
    monkeypatch.setattr(dashboard.time, "monotonic", lambda: now + 61)
    assert cache.known(1, [10, 11]) == {}
    cache.remember(1, {12: True, 13: True})
    assert set(cache.known(1, [10, 11, 12, 13])) == {12, 13}
