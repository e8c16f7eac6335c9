"""A client's time zone is guessed from their phone number's area code when nobody chose one: a 702 number
reads its times (and waits for its quiet hours) in Nevada, not on the East Coast."""

from __future__ import annotations

import pytest

from core.identity import guess_time_zone
from services.preparer_import import engagement_body
from services.schemas import EngagementCreate, SignerIn
from web.preparer.engagement_pages import zone_guess_label

PERSON = {"first_name": "Shelby", "last_name": "O'Neil", "ssn": "123-45-6789"}


@pytest.mark.parametrize(
    ("phone", "zone"),
    [
        ("+1 702 555 0197", "America/Los_Angeles"),  # Nevada: the number from the newcomer's report
        ("(702) 555-0197", "America/Los_Angeles"),  # as a preparer types it
        ("312-555-0102", "America/Chicago"),
        ("+1 520 555 0100", "America/Phoenix"),  # Arizona keeps standard time
        ("+1 907 555 0100", "America/Anchorage"),  # Adak or Anchorage: where most Alaskans live
        ("+1 808 555 0100", "Pacific/Honolulu"),
        ("+33 6 12 34 56 78", "Europe/Paris"),
        ("+44 7911 123456", None),  # four zones for the UK's mobiles: no guess
        ("12", None),
        ("", None),
        (None, None),
    ],
)
def test_the_zone_comes_from_the_phone_numbers_area(phone: str | None, zone: str | None) -> None:
    assert guess_time_zone(phone) == zone


def test_a_form_or_import_row_without_a_zone_gets_the_phones_else_the_firms() -> None:
    row = {"tax_year": "2025", **{f"taxpayer_{k}": v for k, v in PERSON.items()}}
    nevada = engagement_body({**row, "taxpayer_phone": "702 555 0197"}, "America/New_York")
    assert nevada["taxpayer"]["time_zone"] == "America/Los_Angeles"
    by_email = engagement_body({**row, "taxpayer_email": "s@example.com"}, "America/Chicago")
    assert by_email["taxpayer"]["time_zone"] == "America/Chicago"  # nothing to guess from: the firm's
    chosen = {**row, "taxpayer_phone": "702 555 0197", "taxpayer_time_zone": "America/Denver"}
    assert engagement_body(chosen, "America/New_York")["taxpayer"]["time_zone"] == "America/Denver"


def test_the_api_guesses_when_the_zone_is_left_out_and_keeps_a_given_one() -> None:
    assert SignerIn(**PERSON, phone="+17025550197").time_zone == "America/Los_Angeles"
    assert SignerIn(**PERSON, email="s@example.com").time_zone == "America/New_York"  # as before
    given = SignerIn(**PERSON, phone="+17025550197", time_zone="America/Denver")
    assert given.time_zone == "America/Denver"
    with pytest.raises(ValueError, match="unknown time zone"):
        EngagementCreate.model_validate(
            {"tax_year": 2025, "taxpayer": {**PERSON, "phone": "+17025550197", "time_zone": "Mars/Base"}}
        )


def test_the_form_shows_the_guess_as_the_zone_choice() -> None:
    assert zone_guess_label("702 555 0197", "America/New_York") == (
        "Guessed from the phone number: Pacific (America/Los_Angeles)."
    )
    assert zone_guess_label("", "America/Chicago").endswith("without one, your firm's, Central.")
    assert zone_guess_label("+44 7911 123456", "America/Chicago") == (
        "No guess from this phone number: your firm's, Central, unless you choose one."
    )
