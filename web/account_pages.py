"""Pages before the portal: invitation + registration, verification, login (with a code from a new
browser), logout. Every rule comes from `services`; these handlers render and redirect."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response
from pydantic import ValidationError
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from temporalio.client import Client

from core.account_emails import as_email
from core.context import Resources
from core.models import Engagement, Firm, Signer, TaxpayerAccount, utcnow
from core.passwords import MAX_LENGTH, MIN_LENGTH, password_problems
from services import ServiceError, accounts, new_device, returning_clients, throttling, workflow_calls
from services.accounts import channels
from services.deps import OutboxDep, ResourcesDep, SessionDep, TemporalDep
from services.schemas import RegisterIn
from services.throttled_step import Step, throttled_step
from web.rendering import AnyUser, PortalUser, render, safe_next
from web.security import check_csrf
from web.toolkit import next_param, see_other, with_refusal_headers

router = APIRouter(include_in_schema=False, dependencies=[Depends(check_csrf)])

REGISTER_FIELDS = ("username", "email", "phone", "last_name", "ssn_last4")
FIELD_HELP = {
    "username": "Use 3 to 64 letters, digits or . _ @ + -",
    "password": f"Use at least {MIN_LENGTH} characters.",
    "email": "Enter an email address.",
    "phone": "Enter a phone number, like 702 555 0197.",
    "last_name": "Enter your last name as it appears on your tax return.",
    "ssn_last4": "Enter the last four digits of your Social Security number.",
}


# ---- invitation and registration ---------------------------------------------------------------------


@router.get("/invite/{token}")
async def invitation(
    token: str, request: Request, db: SessionDep, resources: ResourcesDep, client: TemporalDep
) -> Response:
    try:
        info, _ = await returning_clients.invitation_for(db, resources, client, token)
    except ServiceError as exc:
        return render(request, "invite.html", {"problem": exc.message}, exc.status_code)
    context = {
        "info": info,
        "firm_name": info.firm_name,
        "token": token,
        "values": {},
        "errors": {},
        "checks": password_checklist("", "", ""),
    }
    return render(request, "invite.html", context)


def password_checklist(password: str, username: str, email: str) -> list[tuple[str, bool]]:
    """The register page's live hints: each NIST rule and whether the password meets it."""
    problems = " ".join(password_problems(password, username, email)) if password else ""
    typed = len(password)
    return [
        (f"At least {MIN_LENGTH} characters ({typed} so far)", MIN_LENGTH <= typed <= MAX_LENGTH),
        ("Not a commonly used password", bool(password) and "common" not in problems),
        ("Not your user name or email", bool(password) and "user name" not in problems),
    ]


@router.post("/invite/{token}/password-hints")
def password_hints(
    request: Request,
    password: Annotated[str, Form(max_length=256)] = "",
    username: Annotated[str, Form(max_length=64)] = "",
    email: Annotated[str, Form(max_length=254)] = "",
) -> Response:
    return render(request, "_password_hints.html", {"checks": password_checklist(password, username, email)})


@router.post("/invite/{token}")
async def register(
    token: str,
    request: Request,
    db: SessionDep,
    resources: ResourcesDep,
    client: TemporalDep,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
    phone: Annotated[str, Form()] = "",
    last_name: Annotated[str, Form()] = "",
    ssn_last4: Annotated[str, Form()] = "",
) -> Response:
    values = {
        "username": username.strip(),
        "email": email.strip(),
        "phone": phone.strip(),
        "last_name": last_name.strip(),
        "ssn_last4": ssn_last4.strip(),
    }
    errors: dict[str, str] = {}
    form_error = None
    status_code = 422
    # The same per-link and per-IP throttle as POST /api/invitations/{token}/register.
    async with throttled_step(request, throttling.REGISTER) as step:
        if step.refusal is not None:
            form_error, status_code = step.refusal.message, step.refusal.status_code
        else:
            try:
                body = RegisterIn(password=password, **values)
            except ValidationError as exc:
                step.refuse()
                for error in exc.errors():
                    field = str(error["loc"][0]) if error["loc"] else ""
                    errors.setdefault(field, FIELD_HELP.get(field, "Check this field."))
            else:
                try:
                    account, signer = await accounts.register(db, resources, client, request, token, body)
                except ServiceError as exc:  # ours, and the workflow's refusals (a locked link: 409)
                    step.failed(exc)
                    at: str | None = getattr(exc, "field", None)
                    if at:
                        errors[at] = str(exc.detail)
                    else:
                        form_error = str(exc.detail)
                else:
                    response = see_other("/portal/verify")
                    accounts.start_session(db, resources, request, response, account, signer, "registration")
                    return response
    refused = RegistrationRefused(values, errors, form_error, status_code, bool(password), step.refusal)
    return await _registration_again(request, db, resources, client, token, refused)


@dataclass(frozen=True)
class RegistrationRefused:
    """A registration that did not go through, as the page shows it again."""

    values: dict[str, str]
    errors: dict[str, str]
    form_error: str | None
    status_code: int
    password_typed: bool
    throttled: ServiceError | None


async def _registration_again(
    request: Request,
    db: Session,
    resources: Resources,
    client: Client,
    token: str,
    r: RegistrationRefused,
) -> Response:
    try:
        info, _ = await accounts.invitation_state(db, resources, client, token)
    except ServiceError as exc:
        return render(request, "invite.html", {"problem": exc.message}, exc.status_code)
    context = {
        "info": info,
        "firm_name": info.firm_name,
        "token": token,
        "values": r.values,
        "errors": r.errors,
        "form_error": r.form_error,
        # The password is never sent back into the page, so its checklist starts again from empty.
        "checks": password_checklist("", r.values["username"], r.values["email"]),
        "retype_password": r.password_typed,
        "throttled": r.throttled.message if r.throttled else None,
    }
    return with_refusal_headers(render(request, "invite.html", context, r.status_code), r.throttled)


# ---- verification (the workflow's code) ----------------------------------------------------------------


async def _verify_page(
    request: Request,
    user: PortalUser,
    resources: ResourcesDep,
    client: TemporalDep,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    state = await workflow_calls.query_status(client, user.signer.engagement_id)
    me = state.signers[user.role]
    now = utcnow()
    sent = None
    if me.code_sent_at is not None and me.code_expires_at is not None and me.code_expires_at > now:
        masked = next((c.masked for c in channels(user.signer) if c.channel == me.code_channel), "")
        sent = _sent(masked, me.code_sent_at + resources.settings.code_resend_cooldown, now)
    locked = me.code_failures >= resources.settings.code_max_failures
    context = {
        "mode": "verify",
        "firm_name": user.firm_name,
        "title": "Verify your account",
        "intro": "To protect your tax documents, confirm it's you with a one-time code.",
        "channels": channels(user.signer),
        "sent": sent,
        "locked": "Too many wrong codes. Ask your preparer to unlock your account." if locked else None,
        "error": error,
        "send_action": "/portal/verify/send",
        "verify_action": "/portal/verify",
        "cancel_action": "/portal/verify/cancel",
        "cancel_label": "Cancel Verification",
        "code_minutes": int(resources.settings.code_lifetime.total_seconds() // 60),
    }
    return render(request, "code.html", context, status_code)


@router.get("/portal/verify")
async def verify_page(
    request: Request, user: AnyUser, resources: ResourcesDep, client: TemporalDep
) -> Response:
    if user.account.verified_at is not None:
        return see_other("/portal")
    return await _verify_page(request, user, resources, client)


@router.post("/portal/verify/send")
async def send_verify_code(
    request: Request,
    user: AnyUser,
    resources: ResourcesDep,
    client: TemporalDep,
    channel: Annotated[str, Form()] = "",
) -> Response:
    if user.account.verified_at is not None:
        return see_other("/portal")
    async with throttled_step(request, throttling.CODE_SEND) as step:  # as POST /api/taxpayer/code
        if step.refusal is not None:
            page = await _verify_page(request, user, resources, client, step.refusal.message, 429)
            return with_refusal_headers(page, step.refusal)
        try:
            await accounts.request_code(client, request, user.signer, channel)
        except ServiceError as exc:  # the workflow's refusals (cooldown, lock) and ours
            step.failed(exc)
            return await _verify_page(request, user, resources, client, str(exc.detail), exc.status_code)
    return see_other("/portal/verify")


def _sent(masked: str, resend_after: datetime, now: datetime) -> dict[str, object]:
    """What the code page shows once a code went out: where, and how long until a resend is allowed."""
    return {"masked": masked, "wait": max(0, math.ceil((resend_after - now).total_seconds()))}


def six_digits(code: str) -> str | None:
    """Accepts a pasted `123 456` or `123-456`; None unless exactly six digits remain."""
    digits = re.sub(r"\D", "", code)
    return digits if len(digits) == 6 else None


@router.post("/portal/verify")
async def verify(
    request: Request,
    user: AnyUser,
    db: SessionDep,
    resources: ResourcesDep,
    client: TemporalDep,
    code: Annotated[str, Form(max_length=40)] = "",
    remember_device: Annotated[str, Form()] = "",
) -> Response:
    if user.account.verified_at is not None:
        return see_other("/portal")
    async with throttled_step(request, throttling.CODE) as step:  # as POST /api/taxpayer/verify
        if step.refusal is not None:
            page = await _verify_page(request, user, resources, client, step.refusal.message, 429)
            return with_refusal_headers(page, step.refusal)
        digits = six_digits(code)
        if digits is None:
            step.refuse()
            return await _verify_page(request, user, resources, client, "Enter the 6-digit code.", 422)
        try:
            await accounts.verify_code(client, request, resources, user.signer, digits)
        except ServiceError as exc:
            step.failed(exc)
            return await _verify_page(request, user, resources, client, str(exc.detail), exc.status_code)
    response = see_other("/portal?m=verified")
    accounts.rotate_session(db, resources, request, response, user.account)
    if remember_device:
        new_device.remember(db, request, response, resources, user.account.id or 0)
    return response


@router.post("/portal/verify/cancel")
def cancel_verification(request: Request, db: SessionDep, resources: ResourcesDep) -> Response:
    response = see_other("/portal/login?m=verification-cancelled")
    accounts.end_session(db, resources, request, response)
    return response


# ---- login ---------------------------------------------------------------------------------------------


@router.get("/portal/login")
def login_page(request: Request, next: str | None = None) -> Response:
    return render(request, "login.html", {"next": safe_next(next), "values": {}, "step": "login"})


# A user name as registration allows it (`RegisterIn`), or anything with an @ (checked as an address).
_LOGIN_SHAPE = re.compile(r"^[A-Za-z0-9._@+-]{3,64}$")


@router.post("/portal/login/continue")
def login_continue(
    request: Request,
    login: Annotated[str, Form(max_length=254)] = "",
    next: Annotated[str, Form()] = "/portal",
) -> Response:
    """Step 1 of 2: the password step follows for any well-formed login, whether or not an account uses
    it (nothing is looked up here), so the answer tells nobody whether an address has an account."""
    typed = login.strip()
    context = {"next": safe_next(next), "values": {"login": typed}}
    well_formed = as_email(typed) is not None if "@" in typed else bool(_LOGIN_SHAPE.match(typed))
    if not well_formed:
        error = "Enter your email address or user name."
        return render(request, "login.html", {**context, "step": "login", "error": error}, 422)
    return render(request, "login.html", {**context, "step": "password"})


@router.post("/portal/login")
async def login(
    request: Request,
    db: SessionDep,
    resources: ResourcesDep,
    login: Annotated[str, Form(max_length=254)] = "",
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    next: Annotated[str, Form()] = "/portal",
) -> Response:
    target = safe_next(next)
    typed = login or username  # `username`: the one-step form of earlier releases
    async with throttled_step(request, throttling.TAXPAYER_LOGIN) as step:  # as POST /api/taxpayer/login
        refusal = step.refusal
        if refusal is None:
            try:
                # argon2 verification is slow by design: off the event loop.
                account, signer = await run_in_threadpool(
                    accounts.check_password, db, request, typed, password
                )
            except ServiceError as exc:
                step.refuse()
                refusal = exc
    if refusal is not None:
        context = {"next": target, "values": {"login": typed.strip()}, "error": refusal.message}
        page = render(request, "login.html", {**context, "step": "password"}, refusal.status_code)
        return with_refusal_headers(page, refusal)
    return await run_in_threadpool(_logged_in, request, db, resources, account, signer, target)


def _logged_in(
    request: Request,
    db: SessionDep,
    resources: ResourcesDep,
    account: TaxpayerAccount,
    signer: Signer,
    target: str,
) -> Response:
    """The password was right: in at once, or on to the code step from a browser Portico doesn't know."""
    if account.verified_at is None:
        response = see_other("/portal/verify")
        accounts.start_session(db, resources, request, response, account, signer, "password")
        return response
    if new_device.is_trusted(db, request, resources, account.id or 0):
        response = see_other(target)
        accounts.start_session(db, resources, request, response, account, signer, "password")
        return response
    response = see_other(f"/portal/login/code?next={next_param(target)}")
    new_device.start_attempt(db, request, response, resources, account)
    return response


def _login_code_page(
    request: Request,
    db: SessionDep,
    resources: ResourcesDep,
    pending: new_device.PendingLogin,
    next_url: str,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    sent = new_device.code_state(db, pending, resources)
    context = {
        "mode": "login",
        "firm_name": firm_name_of(db, pending.signer),
        "title": "Confirm it's you",
        "intro": "You're logging in from a browser we haven't seen before, so we need a one-time code too.",
        "channels": channels(pending.signer),
        "sent": _sent(sent.masked_destination, sent.resend_after, utcnow()) if sent else None,
        "locked": None,
        "error": error,
        "send_action": "/portal/login/code/send",
        "verify_action": "/portal/login/code",
        "cancel_action": "/portal/login/cancel",
        "cancel_label": "Cancel",
        "next": next_url,
        "code_minutes": int(new_device.CODE_LIFETIME.total_seconds() // 60),
    }
    return render(request, "code.html", context, status_code)


def firm_name_of(db: SessionDep, signer: Signer) -> str:
    engagement = db.get(Engagement, signer.engagement_id)
    firm = db.get(Firm, engagement.firm_id) if engagement else None
    return firm.name if firm else ""


def _expired_login(request: Request, exc: ServiceError) -> Response:
    context = {"next": "/portal", "values": {}, "error": exc.message, "step": "login"}
    return render(request, "login.html", context, 401)


def _pending_login(
    request: Request, db: SessionDep, resources: ResourcesDep, step: Step, target: str
) -> new_device.PendingLogin | Response:
    """The login waiting for its code, or the page to answer with instead: the login expired, or the
    throttle says wait (counted as the API counts it)."""
    try:
        pending = new_device.pending_login(db, request, resources)
    except ServiceError as exc:
        step.failed(exc)
        return _expired_login(request, exc)
    if step.refusal is not None:
        page = _login_code_page(request, db, resources, pending, target, step.refusal.message, 429)
        return with_refusal_headers(page, step.refusal)
    return pending


@router.get("/portal/login/code")
def login_code_page(
    request: Request, db: SessionDep, resources: ResourcesDep, next: str | None = None
) -> Response:
    try:
        pending = new_device.pending_login(db, request, resources)
    except ServiceError as exc:
        return _expired_login(request, exc)
    return _login_code_page(request, db, resources, pending, safe_next(next))


@router.post("/portal/login/code/send")
async def send_login_code(
    request: Request,
    db: SessionDep,
    resources: ResourcesDep,
    outbox: OutboxDep,
    channel: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/portal",
) -> Response:
    target = safe_next(next)
    # The same throttle as POST /api/taxpayer/login/code.
    async with throttled_step(request, throttling.TAXPAYER_LOGIN_CODE_SEND) as step:
        pending = _pending_login(request, db, resources, step, target)
        if isinstance(pending, Response):
            return pending
        if channel not in ("email", "sms"):
            step.refuse()
            return _login_code_page(request, db, resources, pending, target, "Choose email or text.", 422)
        try:
            await new_device.send_login_code(db, request, resources, outbox, pending, channel)  # type: ignore[arg-type]
        except ServiceError as exc:
            step.failed(exc)
            return _login_code_page(request, db, resources, pending, target, exc.message, exc.status_code)
    return see_other(f"/portal/login/code?next={next_param(target)}")


@router.post("/portal/login/code")
async def finish_login(
    request: Request,
    db: SessionDep,
    resources: ResourcesDep,
    code: Annotated[str, Form(max_length=40)] = "",
    remember_device: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/portal",
) -> Response:
    target = safe_next(next)
    # The same throttle as POST /api/taxpayer/login/verify.
    async with throttled_step(request, throttling.TAXPAYER_LOGIN_CODE) as step:
        pending = _pending_login(request, db, resources, step, target)
        if isinstance(pending, Response):
            return pending
        digits = six_digits(code)
        if digits is None:
            step.refuse()
            return _login_code_page(request, db, resources, pending, target, "Enter the 6-digit code.", 422)
        try:
            new_device.check_login_code(db, request, resources, pending, digits)
        except ServiceError as exc:
            step.failed(exc)
            return _login_code_page(request, db, resources, pending, target, exc.message, exc.status_code)
    response = see_other(target)
    new_device.end_attempt(db, request, response, resources)
    if remember_device:
        new_device.remember(db, request, response, resources, pending.account.id or 0)
    accounts.start_session(db, resources, request, response, pending.account, pending.signer, "password+code")
    return response


@router.post("/portal/login/cancel")
def cancel_login(request: Request, db: SessionDep, resources: ResourcesDep) -> Response:
    response = see_other("/portal/login")
    new_device.end_attempt(db, request, response, resources)
    return response


@router.post("/portal/logout")
def logout(request: Request, db: SessionDep, resources: ResourcesDep) -> Response:
    response = see_other("/portal/login?m=logged-out")
    accounts.end_session(db, resources, request, response)
    return response


@router.post("/portal/logout-everywhere")
def logout_everywhere(request: Request, user: AnyUser, db: SessionDep, resources: ResourcesDep) -> Response:
    new_device.forget_everywhere(db, user.account.id or 0)
    response = see_other("/portal/login?m=logged-out-everywhere")
    accounts.end_session(db, resources, request, response)
    return response
