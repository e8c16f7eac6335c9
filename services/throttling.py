"""FastAPI dependencies that throttle guessable steps per account and per IP (rules in `core.throttle`).

Put on a route's decorator: `dependencies=[throttling.TAXPAYER_LOGIN]`. Before the route runs, the attempt is
counted for the caller's IP and for the account it names (or refused as throttled: a `Retry-After` and the
wait in words); when the route succeeds the account's count is cleared.
"""

from __future__ import annotations

import contextlib
import email.message
import functools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from anyio import to_thread
from fastapi import Depends, HTTPException, Request
from sqlalchemy import func
from sqlmodel import Session, select

from core import audit, throttle
from core.account_emails import accounts_for_login
from core.context import Resources
from core.models import Preparer, TaxpayerAccount, utcnow
from messaging.delivery import DeliveryError, OutgoingMessage
from messaging.outbox import Outbox
from services import Refusal, ServiceError, cookies
from services.deps import request_actor

AccountOf = Callable[[Request, Resources], Awaitable[str | None]]
OwnerOf = Callable[[Session, str], str | None]
"""The email address of the account a throttle key names (None: no such account)."""


def is_json(content_type: str | None) -> bool:
    """FastAPI's own rule for a JSON body (`fastapi.routing`, strict content type): `application/json` or
    any `application/*+json`, in any case and with any parameters. The throttle reads the account from the
    very body the route validates: a spelling the throttle missed would be an attempt it never counts."""
    if not content_type:
        return False
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


async def _body_field(request: Request, name: str) -> str | None:
    value = await _typed_field(request, name)
    return value.lower() if value else None


async def _typed_field(request: Request, name: str) -> str | None:
    """A field of the body as typed (stripped, at most 320 characters), JSON or form."""
    value: Any = None
    with contextlib.suppress(Exception):  # a body the route can't parse either: the route refuses it
        if is_json(request.headers.get("content-type")):
            body = await request.json()  # cached on the request: the route validates this same object
            value = body.get(name) if isinstance(body, dict) else None
        else:
            value = (await request.form()).get(name)
    return value.strip()[:320] if isinstance(value, str) and value.strip() else None


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
    owner_of: OwnerOf | None = None,
    ip_keeps_successes: bool = False,
) -> Any:
    """A dependency throttling `action`; `forget_on_success=False` keeps counting successes (code sends).
    An IP is given its successful attempts back (a busy office), unless `ip_keeps_successes`: a step that
    always answers success, so that only the count can hold it back.
    With `owner_of`, consecutive failures also count towards the hard lockout (`throttle.LOCKOUT`), and
    the account's owner is told by email when it starts."""

    async def throttled(request: Request) -> AsyncIterator[None]:
        resources: Resources = request.app.state.resources
        engine = resources.engine
        ip = request.client.host if request.client else "unknown"
        account = await account_of(request, resources)
        keys = [(f"{action}:ip", ip, throttle.IP)]
        if account:
            keys.append((f"{action}:account", account, account_rule))
            if owner_of is not None:
                keys.append((f"{action}:consecutive", account, throttle.LOCKOUT))
        try:
            for scope, key, rule in keys:
                count = await to_thread.run_sync(throttle.attempt, engine, scope, key, rule)
                if rule.delay(count) > 0 and rule.delay(count - 1) == 0:
                    await to_thread.run_sync(_audit, resources, request, action, scope)
                    if owner_of is not None and rule is throttle.LOCKOUT:
                        await to_thread.run_sync(tell_owner, request, owner_of, key)
        except throttle.Throttled as exc:
            raise ServiceError(Refusal.THROTTLED, exc.message, retry_after=exc.retry_after) from exc
        try:
            yield
        except (HTTPException, ServiceError) as exc:
            if _ours(exc):  # our failure, not a wrong guess: the attempt is given back
                for scope, key, _rule in keys:
                    await to_thread.run_sync(
                        functools.partial(throttle.succeeded, engine, scope, key, forget=False)
                    )
            raise  # a refused attempt: it stays counted
        for scope, key, _rule in keys:
            is_ip = scope.endswith(":ip")
            if is_ip and ip_keeps_successes:
                continue
            if forget_on_success or is_ip:
                await to_thread.run_sync(
                    functools.partial(throttle.succeeded, engine, scope, key, forget=not is_ip)
                )

    return Depends(throttled)


def _ours(exc: HTTPException | ServiceError) -> bool:
    return exc.ours if isinstance(exc, ServiceError) else exc.status_code >= 500


def _audit(resources: Resources, request: Request, action: str, scope: str) -> None:
    """The first attempt that has to wait is a lockout: recorded once, not on every refused try."""
    with Session(resources.engine) as db:
        actor = request_actor(request, "anonymous", scope.rsplit(":", 1)[-1])
        audit.record(db, action="throttle.lockout", actor=actor, detail={"action": action, "scope": scope})
        db.commit()


def taxpayer_owner(db: Session, username: str) -> str | None:
    account = db.exec(select(TaxpayerAccount).where(TaxpayerAccount.username == username)).first()
    if account is None:  # usernames are compared as typed at registration; the throttle's key is lowered
        account = db.exec(
            select(TaxpayerAccount).where(func.lower(TaxpayerAccount.username) == username)
        ).first()
    return account.email if account is not None else None


def preparer_owner(db: Session, email: str) -> str | None:
    preparer = db.exec(select(Preparer).where(Preparer.email == email)).first()
    return preparer.email if preparer is not None else None


def tell_owner(request: Request, owner_of: OwnerOf, key: str) -> None:
    """The account is locked after `throttle.LOCKOUT.free` failures in a row: its owner hears of it once
    (the outbox's idempotency key), whoever was guessing. No such account: nobody to tell."""
    resources: Resources = request.app.state.resources
    with Session(resources.engine) as db:
        to = owner_of(db, key)
    if to is None:
        return
    message = OutgoingMessage(
        channel="email",
        to=to,
        subject="Your Portico account is locked for a day",
        body=(
            f"Someone has entered a wrong password for your Portico account {throttle.LOCKOUT.free} times "
            "in a row, so we have locked sign-in for 24 hours. If this was you, wait a day and try again; "
            "if it was not, your password has not been given away, but tell your tax preparer."
        ),
    )
    outbox: Outbox = request.app.state.outbox
    since = utcnow().date().isoformat()
    with contextlib.suppress(DeliveryError):  # the lock holds whether or not the email goes out now
        outbox.send(
            f"lockout:{throttle.key_hash(key)}:{since}", None, "account-locked", lambda _s: (message, None)
        )


async def taxpayer_login_key(request: Request, resources: Resources) -> str | None:
    """The login throttle's key: the account's own key (its user name, lower case) when the login typed
    names one, by user name or by a verified email alike, so switching between them counts as one account;
    else what was typed. The same key as a password typed on the Account page (`account_changes`)."""
    typed = await _typed_field(request, "login") or await _typed_field(request, "username")
    if typed is None:
        return None

    def lookup() -> str:
        with Session(resources.engine) as db:
            found = accounts_for_login(db, typed)
        return found[0].username.lower() if found else typed.lower()

    return await to_thread.run_sync(lookup)


TAXPAYER_LOGIN = guard("taxpayer-login", taxpayer_login_key, owner_of=taxpayer_owner)
TAXPAYER_LOGIN_CODE_SEND = guard("taxpayer-login-code-send", cookie(cookies.LOGIN), forget_on_success=False)
TAXPAYER_LOGIN_CODE = guard(
    "taxpayer-login-code", cookie(cookies.LOGIN), account_rule=throttle.LOCKED_BY_WORKFLOW
)
# Registration and code entry already lock in the workflow after a few misses (the spine's rule, answered
# 423/409): the account throttle sits above that limit, so the lock is what a person sees there.
REGISTER = guard("register", path_param("token"), account_rule=throttle.LOCKED_BY_WORKFLOW)
CODE_SEND = guard("code-send", cookie(cookies.SESSION), forget_on_success=False)
CODE = guard("code", cookie(cookies.SESSION), account_rule=throttle.LOCKED_BY_WORKFLOW)
PREPARER_LOGIN = guard("preparer-login", body_field("email"), owner_of=preparer_owner)
