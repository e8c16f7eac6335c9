"""Throttling of guessable steps (login, registration, code request, code entry) per account and per IP.

Every attempt is counted when it *starts* (so a burst of parallel guesses can't slip past the count) and the
account's count is cleared when the attempt succeeds. After `free` attempts each further one must wait an
increasing delay: `base * 2 ** (attempts - free)` seconds, capped. A quiet `window` after the last attempt
forgives the count. State lives in the `ThrottleState` table, so several API processes share it; the
check-and-count is a compare-and-set on the row, safe between processes.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from core.metrics import THROTTLE_REFUSALS
from core.models import ThrottleState, utcnow


@dataclass(frozen=True)
class Rule:
    free: int  # attempts allowed without any wait
    base: float = 1.0  # seconds: the first wait after the free attempts
    cap: float = 15 * 60.0  # the longest wait
    window: timedelta = timedelta(hours=1)  # a count is forgiven this long after the last attempt

    def delay(self, attempts: int) -> float:
        """Seconds to wait before the next attempt, once `attempts` have been made."""
        if attempts < self.free:
            return 0.0
        return float(min(self.cap, self.base * 2 ** (attempts - self.free)))


ACCOUNT = Rule(free=5)
LOCKED_BY_WORKFLOW = Rule(free=10)  # steps the workflow itself locks after fewer misses
IP = Rule(free=30)  # an office behind one address logs in many people
# Consecutive failures of one account's password, however slowly they come (the account's own count is
# forgiven after a quiet hour): NIST SP 800-63B §5.2.2 allows at most 100. Then every further attempt
# waits a day, the right password too, and the owner is told (`services.throttling`). A success clears it.
LOCKOUT = Rule(free=100, base=24 * 3600.0, cap=24 * 3600.0, window=timedelta(days=30))


class Throttled(Exception):
    def __init__(self, retry_after: float, scope: str) -> None:
        super().__init__(scope)
        self.retry_after = max(1, math.ceil(retry_after))
        self.scope = scope

    @property
    def message(self) -> str:
        return f"Too many attempts. Please wait {wait_text(self.retry_after)} and try again."


def wait_text(seconds: int) -> str:
    if seconds < 90:
        return "1 second" if seconds == 1 else f"{seconds} seconds"
    minutes = math.ceil(seconds / 60)
    return f"{minutes} minutes"


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def attempt(engine: Engine, scope: str, key: str, rule: Rule, now: datetime | None = None) -> int:
    """Counts an attempt, or raises `Throttled` (without counting) while the key must wait.

    Answers the attempt number. A compare-and-set on the attempt count makes it safe between processes.
    """
    digest = key_hash(key)
    for _ in range(20):
        now = now or utcnow()
        with Session(engine) as db:
            row = db.get(ThrottleState, (scope, digest))
            if row is None:
                db.add(
                    ThrottleState(
                        scope=scope,
                        key_hash=digest,
                        attempts=1,
                        last_attempt_at=now,
                        next_allowed_at=now + timedelta(seconds=rule.delay(1)),
                    )
                )
                try:
                    db.commit()
                except IntegrityError:
                    continue  # another process made the row first: read it again
                return 1
            if row.next_allowed_at is not None and now < row.next_allowed_at:
                THROTTLE_REFUSALS.labels(scope=scope).inc()
                raise Throttled((row.next_allowed_at - now).total_seconds(), scope)
            before = row.attempts
            fresh = now - row.last_attempt_at > rule.window
            attempts = 1 if fresh else before + 1
            result = db.exec(
                update(ThrottleState)
                .where(
                    col(ThrottleState.scope) == scope,
                    col(ThrottleState.key_hash) == digest,
                    col(ThrottleState.attempts) == before,
                )
                .values(
                    attempts=attempts,
                    last_attempt_at=now,
                    next_allowed_at=now + timedelta(seconds=rule.delay(attempts)),
                )
            )
            db.commit()
            if result.rowcount == 1:
                return attempts
        now = None  # lost the race: look again
    raise Throttled(rule.base, scope)  # pragma: no cover - twenty lost races in a row


def succeeded(engine: Engine, scope: str, key: str, *, forget: bool) -> None:
    """After a successful attempt: `forget` clears the count (the account's); otherwise it gives back the
    one attempt this success used (the IP's: a busy office isn't slowed by its own good logins)."""
    digest = key_hash(key)
    with Session(engine) as db:
        row = db.get(ThrottleState, (scope, digest))
        if row is None:
            return
        if forget:
            db.delete(row)
        else:
            db.exec(
                update(ThrottleState)
                .where(
                    col(ThrottleState.scope) == scope,
                    col(ThrottleState.key_hash) == digest,
                    col(ThrottleState.attempts) > 0,
                )
                .values(attempts=col(ThrottleState.attempts) - 1)
            )
        db.commit()
