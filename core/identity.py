"""Normalising and masking contact data, and the identity match a registration must pass."""

from __future__ import annotations

import re
import unicodedata

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from phonenumbers import timezone as phone_time_zones

from core.crypto import Cipher


class InvalidContact(ValueError):
    pass


def normalise_phone(raw: str, region: str = "US") -> str:
    """E.164, e.g. +17025550197."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidContact(f"{raw!r} is not a phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidContact(f"{raw!r} is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


# Where a number's area spans several zones (907: Adak and Anchorage), the one most of its people live in.
MAIN_US_TIME_ZONES = (
    "America/New_York",
    "America/Chicago",
    "America/Denver",
    "America/Phoenix",
    "America/Los_Angeles",
    "America/Anchorage",
    "Pacific/Honolulu",
    "America/Puerto_Rico",
)


def guess_time_zone(phone: str | None, region: str = "US") -> str | None:
    """The time zone a phone number's area code (or country) points to, e.g. America/Los_Angeles for a 702
    number; None when the number is not valid or its zones are too many to choose (a whole country)."""
    if not phone:
        return None
    try:
        number = phonenumbers.parse(phone, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    zones = [z for z in phone_time_zones.time_zones_for_number(number) if "/" in z and z != "Etc/Unknown"]
    main = [z for z in zones if z in MAIN_US_TIME_ZONES]
    if len(main) == 1:
        return main[0]
    return zones[0] if len(zones) == 1 else None


def format_phone(phone: str) -> str:
    """For people to read: `(702) 555-0197` for a +1 number, `+44 20 7946 0958` otherwise. Storage and
    matching keep E.164 (`normalise_phone`); what cannot be read as a number is shown as stored."""
    try:
        number = phonenumbers.parse(phone, "US")
    except phonenumbers.NumberParseException:
        return phone
    if not phonenumbers.is_valid_number(number):
        return phone
    style = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if number.country_code == 1
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    return phonenumbers.format_number(number, style)


def normalise_email(raw: str) -> str:
    try:
        result = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise InvalidContact(str(exc)) from exc
    return result.normalized.lower()


def normalise_name(raw: str) -> str:
    """Case-, accent- and punctuation-insensitive in any script: "O'Neil " = "oneil", "Strauß" = "Strauss"."""
    decomposed = unicodedata.normalize("NFKD", raw.casefold())
    return "".join(c for c in decomposed if c.isalnum() and not unicodedata.combining(c))


def normalise_ssn(raw: str) -> str:
    digits = re.sub(r"\D", "", raw)
    if (
        len(digits) != 9
        or digits.startswith(("000", "666", "9"))
        or digits[3:5] == "00"
        or digits[5:] == "0000"
    ):
        raise InvalidContact("a Social Security number has nine digits, like 123-45-6789")
    return digits


def mask_email(email: str) -> str:
    """`she*****com`, as the seed product shows it."""
    compact = email.replace("@", "").replace(".", "")
    return f"{compact[:3]}*****{compact[-3:]}" if len(compact) > 6 else "*****"


def mask_phone(phone: str) -> str:
    """`70*****97`: the first two and last two digits of the national number."""
    try:
        national = str(phonenumbers.parse(phone, "US").national_number)
    except phonenumbers.NumberParseException:
        national = re.sub(r"\D", "", phone)
    return f"{national[:2]}*****{national[-2:]}"


def identity_digest(cipher: Cipher, last_name: str, ssn_last4: str) -> str:
    return cipher.digest("identity", f"{normalise_name(last_name)}|{ssn_last4.strip()}")


def contact_digest(cipher: Cipher, channel: str, value: str) -> str:
    """Digest of a normalised phone or email, so the workflow can compare without holding it."""
    normalised = normalise_phone(value) if channel == "sms" else normalise_email(value)
    return cipher.digest(f"contact:{channel}", normalised)
