"""When a text message may go out: never in the taxpayer's night."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo


def next_allowed_send(now: datetime, time_zone: str, quiet_start: int, quiet_end: int) -> datetime:
    """`now` if it is daytime in `time_zone`, else the next `quiet_end` o'clock there (as UTC-aware)."""
    if quiet_start == quiet_end:
        return now
    local = now.astimezone(ZoneInfo(time_zone))
    hour = local.hour
    in_quiet = (
        hour >= quiet_start or hour < quiet_end
        if quiet_start > quiet_end
        else quiet_start <= hour < quiet_end
    )
    if not in_quiet:
        return now
    morning = local.replace(hour=quiet_end, minute=0, second=0, microsecond=0)
    if morning <= local:
        morning = (local + timedelta(days=1)).replace(hour=quiet_end, minute=0, second=0, microsecond=0)
    # Re-attach the zone so a DST change overnight lands on the wall-clock hour, not a shifted one.
    morning = morning.replace(tzinfo=ZoneInfo(time_zone))
    return morning.astimezone(now.tzinfo)
