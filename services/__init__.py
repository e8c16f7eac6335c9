"""The rules shared by the JSON API (`api/`) and the pages (`web/`).

A service refuses with `ServiceError`: a sentence for the person, the form field at fault and the kind of
refusal, in the rules' own terms. The API answers it as JSON with the status `HTTP_STATUS` gives its kind
(`portico/app.py` registers the one handler); the pages show it next to the field it names.
"""

from __future__ import annotations

from enum import StrEnum
from http import HTTPStatus


class Refusal(StrEnum):
    """Why a service said no."""

    INVALID = "invalid"
    """What was given is not acceptable (a field's value, a wrong code)."""
    UNAUTHENTICATED = "unauthenticated"
    """Who is asking is not known (a wrong password, a login that timed out)."""
    FORBIDDEN = "forbidden"
    """Known, but not allowed to."""
    NOT_FOUND = "not_found"
    """No such thing (or not theirs: the same answer)."""
    CONFLICT = "conflict"
    """Not now: the thing's state does not allow it (taken, closed, already done)."""
    LOCKED = "locked"
    """Too many wrong answers: locked for a while."""
    THROTTLED = "throttled"
    """Too soon: ask again after `retry_after` seconds (or the wait the message names)."""
    TOO_LARGE = "too_large"
    """A file over the size limit."""
    UNSUPPORTED = "unsupported"
    """A file of a type Portico does not take."""
    FAILED = "failed"
    """Our side went wrong; nothing was changed."""
    UNAVAILABLE = "unavailable"
    """Something Portico needs cannot be reached just now: try again shortly."""
    TIMED_OUT = "timed_out"
    """Something Portico needs did not answer in time."""


# The one translation of refusals into HTTP: the API's answers and the pages' statuses both use it.
HTTP_STATUS: dict[Refusal, int] = {
    Refusal.INVALID: HTTPStatus.UNPROCESSABLE_ENTITY,
    Refusal.UNAUTHENTICATED: HTTPStatus.UNAUTHORIZED,
    Refusal.FORBIDDEN: HTTPStatus.FORBIDDEN,
    Refusal.NOT_FOUND: HTTPStatus.NOT_FOUND,
    Refusal.CONFLICT: HTTPStatus.CONFLICT,
    Refusal.LOCKED: HTTPStatus.LOCKED,
    Refusal.THROTTLED: HTTPStatus.TOO_MANY_REQUESTS,
    Refusal.TOO_LARGE: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    Refusal.UNSUPPORTED: HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
    Refusal.FAILED: HTTPStatus.BAD_GATEWAY,
    Refusal.UNAVAILABLE: HTTPStatus.SERVICE_UNAVAILABLE,
    Refusal.TIMED_OUT: HTTPStatus.GATEWAY_TIMEOUT,
}
OURS = frozenset({Refusal.FAILED, Refusal.UNAVAILABLE, Refusal.TIMED_OUT})
"""Refusals that are Portico's failure, not the person's: a throttle gives such an attempt back."""


class ServiceError(Exception):
    """A refusal meant for the person: `message` says it, `field` names the form field at fault."""

    def __init__(
        self, kind: Refusal, message: str, field: str | None = None, *, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.field = field
        self.retry_after = retry_after

    @property
    def ours(self) -> bool:
        """Portico's failure rather than the person's (a provider or the workflow could not answer)."""
        return self.kind in OURS

    @property
    def status_code(self) -> int:
        """The HTTP status of this kind of refusal (`HTTP_STATUS`), for an answer or a page."""
        return int(HTTP_STATUS[self.kind])

    @property
    def detail(self) -> str:
        """The message, under the name an `HTTPException` gives it, for a page that catches either."""
        return self.message

    @property
    def headers(self) -> dict[str, str] | None:
        """`Retry-After` for a refusal that names its wait."""
        return {"Retry-After": str(self.retry_after)} if self.retry_after is not None else None

    def __repr__(self) -> str:
        return f"ServiceError({self.kind.value!r}, {self.message!r}, {self.field!r})"
