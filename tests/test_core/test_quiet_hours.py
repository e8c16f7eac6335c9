"""next_allowed_send: texts never go out in the signer's night (21:00-08:00 local by default), DST too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from core.quiet_hours import next_allowed_send

NEW_YORK = ZoneInfo("America/New_York")


def ny(*args: int, fold: int = 0) -> datetime:
    """A New York wall-clock time, as the UTC instant the workflow would pass in."""
    return datetime(*args, tzinfo=NEW_YORK, fold=fold).astimezone(UTC)


def in_zone(zone: str, *args: int) -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(zone)).astimezone(UTC)


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        pytest.param(ny(2026, 6, 10, 12, 0), ny(2026, 6, 10, 12, 0), id="midday: at once"),
        pytest.param(ny(2026, 6, 10, 8, 0), ny(2026, 6, 10, 8, 0), id="08:00 sharp: at once"),
        pytest.param(ny(2026, 6, 10, 20, 59, 59), ny(2026, 6, 10, 20, 59, 59), id="20:59:59: at once"),
        pytest.param(ny(2026, 6, 10, 21, 0), ny(2026, 6, 11, 8, 0), id="21:00 sharp: next morning"),
        pytest.param(ny(2026, 6, 10, 23, 0), ny(2026, 6, 11, 8, 0), id="23:00: next morning"),
        pytest.param(ny(2026, 6, 11, 0, 0), ny(2026, 6, 11, 8, 0), id="midnight: this morning"),
        pytest.param(ny(2026, 6, 11, 3, 17, 42), ny(2026, 6, 11, 8, 0), id="03:17:42: this morning"),
        pytest.param(ny(2026, 6, 11, 7, 59, 59), ny(2026, 6, 11, 8, 0), id="07:59:59: this morning"),
        pytest.param(ny(2026, 12, 31, 22, 0), ny(2027, 1, 1, 8, 0), id="new year's eve: next year"),
        pytest.param(ny(2028, 2, 28, 23, 0), ny(2028, 2, 29, 8, 0), id="leap day"),
    ],
)
def test_default_quiet_hours_in_new_york(now: datetime, expected: datetime) -> None:
    assert next_allowed_send(now, "America/New_York", 21, 8) == expected


@pytest.mark.parametrize(
    ("zone", "now", "expected"),
    [
        # The same UTC instant is evening in one place and morning in another.
        (
            "America/Los_Angeles",
            datetime(2026, 6, 11, 5, 0, tzinfo=UTC),
            in_zone("America/Los_Angeles", 2026, 6, 11, 8),
        ),
        ("Europe/London", datetime(2026, 6, 11, 5, 0, tzinfo=UTC), in_zone("Europe/London", 2026, 6, 11, 8)),
        ("Asia/Tokyo", datetime(2026, 6, 11, 5, 0, tzinfo=UTC), datetime(2026, 6, 11, 5, 0, tzinfo=UTC)),
        (
            "Asia/Kolkata",
            in_zone("Asia/Kolkata", 2026, 6, 10, 22, 30),
            in_zone("Asia/Kolkata", 2026, 6, 11, 8),
        ),
        (
            "America/Phoenix",
            in_zone("America/Phoenix", 2026, 3, 8, 2, 30),
            in_zone("America/Phoenix", 2026, 3, 8, 8),
        ),
    ],
)
def test_the_signers_zone_decides(zone: str, now: datetime, expected: datetime) -> None:
    assert next_allowed_send(now, zone, 21, 8) == expected


@pytest.mark.parametrize(
    ("quiet", "now", "expected"),
    [
        pytest.param((1, 6), ny(2026, 6, 11, 3, 0), ny(2026, 6, 11, 6, 0), id="1-6 window: held"),
        pytest.param((1, 6), ny(2026, 6, 11, 0, 30), ny(2026, 6, 11, 0, 30), id="1-6 window: before it"),
        pytest.param((1, 6), ny(2026, 6, 11, 6, 0), ny(2026, 6, 11, 6, 0), id="1-6 window: at its end"),
        pytest.param((22, 7), ny(2026, 6, 10, 21, 30), ny(2026, 6, 10, 21, 30), id="22-7: 21:30 allowed"),
        pytest.param((22, 7), ny(2026, 6, 11, 6, 30), ny(2026, 6, 11, 7, 0), id="22-7: 06:30 held"),
        pytest.param((9, 9), ny(2026, 6, 11, 3, 0), ny(2026, 6, 11, 3, 0), id="no quiet hours"),
    ],
)
def test_other_quiet_windows(quiet: tuple[int, int], now: datetime, expected: datetime) -> None:
    assert next_allowed_send(now, "America/New_York", *quiet) == expected


def test_result_is_in_the_callers_zone() -> None:
    """The workflow passes UTC and compares with workflow.now(): it must get UTC back."""
    result = next_allowed_send(ny(2026, 6, 10, 23, 0), "America/New_York", 21, 8)
    assert result.utcoffset() == timedelta(0)


# ---- daylight saving nights (America/New_York: 2026-03-08 02:00 -> 03:00, 2026-11-01 02:00 -> 01:00) -------


@pytest.mark.parametrize(
    ("now", "expected_utc"),
    [
        # Spring forward: the night is an hour shorter, and 08:00 EDT is 12:00 UTC (not 13:00 EST).
        pytest.param(ny(2026, 3, 7, 23, 0), datetime(2026, 3, 8, 12, 0, tzinfo=UTC), id="spring: 23:00 EST"),
        pytest.param(ny(2026, 3, 8, 1, 59), datetime(2026, 3, 8, 12, 0, tzinfo=UTC), id="spring: 01:59 EST"),
        pytest.param(ny(2026, 3, 8, 3, 30), datetime(2026, 3, 8, 12, 0, tzinfo=UTC), id="spring: 03:30 EDT"),
        # Fall back: the night is an hour longer, and 08:00 EST is 13:00 UTC (not 12:00 EDT).
        pytest.param(ny(2026, 10, 31, 23, 0), datetime(2026, 11, 1, 13, 0, tzinfo=UTC), id="fall: 23:00 EDT"),
        pytest.param(
            ny(2026, 11, 1, 1, 30), datetime(2026, 11, 1, 13, 0, tzinfo=UTC), id="fall: first 01:30"
        ),
        pytest.param(
            ny(2026, 11, 1, 1, 30, fold=1), datetime(2026, 11, 1, 13, 0, tzinfo=UTC), id="fall: second 01:30"
        ),
    ],
)
def test_dst_night_ends_at_eight_on_the_wall_clock(now: datetime, expected_utc: datetime) -> None:
    result = next_allowed_send(now, "America/New_York", 21, 8)
    assert result == expected_utc
    assert result.astimezone(NEW_YORK).hour == 8


def test_dst_night_lengths() -> None:
    spring = next_allowed_send(ny(2026, 3, 7, 23, 0), "America/New_York", 21, 8) - ny(2026, 3, 7, 23, 0)
    autumn = next_allowed_send(ny(2026, 10, 31, 23, 0), "America/New_York", 21, 8) - ny(2026, 10, 31, 23, 0)
    assert (spring, autumn) == (timedelta(hours=8), timedelta(hours=10))


def test_quiet_end_inside_the_skipped_hour() -> None:
    """Quiet until 02:00 on the night 02:00 does not exist: the clock jumps to 03:00 EDT, so that is when."""
    result = next_allowed_send(ny(2026, 3, 8, 1, 30), "America/New_York", 21, 2)
    assert result == datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
    assert result.astimezone(NEW_YORK).hour == 3


@pytest.mark.parametrize("night", ["2026-03-07", "2026-10-31"], ids=["spring forward", "fall back"])
def test_every_minute_of_a_dst_night(night: str) -> None:
    """Sweep the whole night minute by minute: never a quiet-hour send, never early, never a late one."""
    start = datetime.fromisoformat(f"{night}T18:00").replace(tzinfo=NEW_YORK).astimezone(UTC)
    for minute in range(0, 18 * 60):
        now = start + timedelta(minutes=minute)
        result = next_allowed_send(now, "America/New_York", 21, 8)
        local_now, local_result = now.astimezone(NEW_YORK), result.astimezone(NEW_YORK)
        if 8 <= local_now.hour < 21:
            assert result == now, local_now
        else:
            assert result > now, local_now
            assert (local_result.hour, local_result.minute, local_result.second) == (8, 0, 0), local_now
            assert result - now <= timedelta(hours=12), local_now
