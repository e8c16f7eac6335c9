"""FastAPI dependencies that throttle guessable steps per account and per IP (rules in `core.throttle`).

Put on a route's decorator: `dependencies=[throttling.TAXPAYER_LOGIN]`. Before the route runs, the attempt is
counted for the caller's IP and for the account it names (or refused with 429, a `Retry-After` header and
the wait in words); when the route succeeds the account's count is cleared.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from anyio import to_thread
from fastapi import Depends, HTTPException, Request, status
from sqlmodel import Session

from api.deps import request_actor
from api.services import cookies
from core import audit, throttle
from core.context import Resources

AccountOf = Callable[[Request, Resources], Awaitable[str | None]]


async def _body_field(request: Request, name: str) -> str | None:
    value: Any = None
    with contextlib.suppress(Exception):
        if request.headers.get("content-type", "").startswith("application/json"):
            body = await request.json()
            value = body.get(name) if isinstance(body, dict) else None
        else:
            value = (await request.form()).get(name)
    return value.strip().lower()[:320] if isinstance(value, str) and value.strip() else None


def body_field(name: str) -> AccountOf:
    async def account(request: Request, resources: Resources) -> str | None:
        return await _body_field(request, name)

    return account


def path_param(name: str) -> AccountOf:
    async def account(request: Request, resources: Resources) -> str | None:
        return request.path_params.get(name)

    return account


def cookie(base: str) -> AccountOf:
    async def account(request: Request, resources: Resources) -> str | None:
        return cookies.read(request, resources, base)

    return account


def guard(
    action: str,
    account_of: AccountOf,
    *,
    forget_on_success: bool = True,
    account_rule: throttle.Rule = throttle.ACCOUNT,
) -> Any:
    """A dependency throttling `action`; `forget_on_success=False` keeps counting successes (code sends)."""

    async def throttled(request: Request) -> AsyncIterator[None]:
        resources: Resources = request.app.state.resources
        engine = resources.engine
        ip = request.client.host if request.client else "unknown"
        account = await account_of(request, resources)
        keys = [(f"{action}:ip", ip, throttle.IP)]
        if account:
            keys.append((f"{action}:account", account, account_rule))
        try:
            for scope, key, rule in keys:
                count = await to_thread.run_sync(throttle.attempt, engine, scope, key, rule)
                if rule.delay(count) > 0 and rule.delay(count - 1) == 0:
                    await to_thread.run_sync(_audit, resources, request, action, scope)
        except throttle.Throttled as exc:
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS, exc.message, headers={"Retry-After": str(exc.retry_after)}
            ) from exc
        try:
            yield
        except HTTPException as exc:
            if exc.status_code >= 500:  # our failure, not a wrong guess: the attempt is given back
                for scope, key, _rule in keys:
                    await to_thread.run_sync(
                        functools.partial(throttle.succeeded, engine, scope, key, forget=False)
                    )
            raise  # a refused attempt: it stays counted
        for scope, key, _rule in keys:
            is_ip = scope.endswith(":ip")
            if forget_on_success or is_ip:
                await to_thread.run_sync(
                    functools.partial(throttle.succeeded, engine, scope, key, forget=not is_ip)
                )

    return Depends(throttled)


def _audit(resources: Resources, request: Request, action: str, scope: str) -> None:
    """The first attempt that has to wait is a lockout: recorded once, not on every refused try."""
    with Session(resources.engine) as db:
        actor = request_actor(request, "anonymous", scope.rsplit(":", 1)[-1])
        audit.record(db, action="throttle.lockout", actor=actor, detail={"action": action, "scope": scope})
        db.commit()


TAXPAYER_LOGIN = guard("taxpayer-login", body_field("username"))
TAXPAYER_LOGIN_CODE_SEND = guard("taxpayer-login-code-send", cookie(cookies.LOGIN), forget_on_success=False)
TAXPAYER_LOGIN_CODE = guard(
    "taxpayer-login-code", cookie(cookies.LOGIN), account_rule=throttle.LOCKED_BY_WORKFLOW
)
# Registration and code entry already lock in the workflow after a few misses (the spine's rule, answered
# 423/409): the account throttle sits above that limit, so the lock is what a person sees there.
REGISTER = guard("register", path_param("token"), account_rule=throttle.LOCKED_BY_WORKFLOW)
CODE_SEND = guard("code-send", cookie(cookies.SESSION), forget_on_success=False)
CODE = guard("code", cookie(cookies.SESSION), account_rule=throttle.LOCKED_BY_WORKFLOW)
PREPARER_LOGIN = guard("preparer-login", body_field("email"))
