"""A service's refusal as the JSON API answers it: `{"detail": message}` with the status of its kind.

Registered once for the whole app (`portico/app.py`), so a refusal a page does not catch is answered the
same way. The status comes from `services.HTTP_STATUS`, the one table of kinds and statuses.
"""

from __future__ import annotations

from fastapi import Request, Response
from fastapi.responses import JSONResponse

from services import ServiceError


async def refusal_answer(request: Request, exc: Exception) -> Response:
    """The answer FastAPI gives an `HTTPException`, with the refusal's status and `Retry-After`."""
    if not isinstance(exc, ServiceError):  # pragma: no cover - registered for ServiceError only
        raise exc
    return JSONResponse({"detail": exc.message}, status_code=exc.status_code, headers=exc.headers)
