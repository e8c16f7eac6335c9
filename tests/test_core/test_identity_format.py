"""Phone numbers as people read them; what Portico stores and matches stays E.164."""

from __future__ import annotations

import pytest

from core.identity import format_phone, normalise_phone


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("+17025550197", "(702) 555-0197"),
        ("+1 702 555 0197", "(702) 555-0197"),  # an account registered before numbers were normalised
        ("+14165550123", "(416) 555-0123"),  # Canada shares +1 and its format
        ("+442079460958", "+44 20 7946 0958"),
        ("+33142685300", "+33 1 42 68 53 00"),
        ("not a number", "not a number"),
        ("+1702555019", "+1702555019"),  # too short to be a number: shown as stored
        ("", ""),
    ],
)
def test_format_phone(stored: str, shown: str) -> None:
    assert format_phone(stored) == shown


def test_a_formatted_number_normalises_back_to_the_stored_one() -> None:
    for stored in ("+17025550197", "+442079460958"):
        assert normalise_phone(format_phone(stored)) == stored
