"""Running one of the throttling guards of `services.throttling` by hand.

The JSON API puts a guard on a route and lets a refusal be an exception. A page answers a refused attempt
with a page (status 401, 422 …) instead, and an account change counts only its password check: both drive
the very same guard here, so the counts, waits and messages are the API's.

    async with throttled_step(request, throttling.TAXPAYER_LOGIN) as step:
        if step.refusal:          # must wait: 429, "Too many attempts. Please wait 4 seconds …"
            return page(step.refusal)
        ...
        step.refuse()             # a wrong guess: it stays counted (a success clears the account's count)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import HTTPException, Request

from services import Refusal, ServiceError

Failure = HTTPException | ServiceError


class Step:
    def __init__(self) -> None:
        self.refusal: ServiceError | None = None
        self.failure: Failure | None = None

    def refuse(self) -> None:
        """This attempt failed (a wrong password, code or detail): it stays counted."""
        self.failure = ServiceError(Refusal.INVALID, "refused")

    def failed(self, exc: Failure) -> None:
        """Failed with `exc`: counted when the person's (4xx), given back when ours (5xx), as in the API."""
        self.failure = exc


@asynccontextmanager
async def throttled_step(request: Request, guard: Any) -> AsyncIterator[Step]:
    """`guard` is one of `services.throttling`'s dependencies (`Depends(...)`)."""
    step = Step()
    attempt: Any = guard.dependency(request)  # the guard's own generator: count, then yield
    try:
        await anext(attempt)
    except ServiceError as exc:
        step.refusal = exc
        yield step
        return
    try:
        yield step
    except (
        HTTPException,
        ServiceError,
    ) as exc:  # the guard gives our own failures (5xx) back and keeps the rest counted
        await _finish(attempt, exc)
        raise
    except BaseException:  # not a refusal the guard knows: counted, nothing given back (as in the API)
        await attempt.aclose()
        raise
    await _finish(attempt, step.failure)


async def _finish(attempt: Any, failure: Failure | None) -> None:
    try:
        if failure is None:
            await anext(attempt)
        else:
            await attempt.athrow(failure)
    except StopAsyncIteration:
        pass
    except (HTTPException, ServiceError) as exc:
        if exc is not failure:
            raise
