"""Workspace login: email + password, then the authenticator code; the first login sets the app up
(QR code + recovery codes). Joining a firm from a colleague's invitation. Rules: `preparer_auth`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response, status

from core import audit, throttle
from core.models import Preparer
from core.passwords import MIN_LENGTH
from services import ServiceError, throttling
from services import preparer_account as my_account
from services import preparer_auth as auth
from services import preparer_colleagues as people
from services.deps import ResourcesDep, SessionDep, request_actor
from web.preparer.account_pages import render_account_page
from web.preparer.rendering import CurrentWorkspace, render, safe_next
from web.security import check_csrf
from web.toolkit import next_param, see_other

router = APIRouter(prefix="/preparer", include_in_schema=False, dependencies=[Depends(check_csrf)])


def _login_page(
    request: Request, next_url: str, error: str | None = None, status_code: int = 200, email: str = ""
) -> Response:
    context = {"next": next_url, "email": email, "error": error, "page": "login"}
    return render(request, "preparer/login.html", context, status_code)


@router.get("/login")
def login_page(request: Request, next: str | None = None) -> Response:
    return _login_page(request, safe_next(next))


# The JSON API's login throttle (`services.throttling.PREPARER_LOGIN`), counted in the same rows: a
# guesser gains nothing by switching between the page and the API.
LOGIN_THROTTLE = "preparer-login"


def _throttle_keys(request: Request, email: str) -> list[tuple[str, str, throttle.Rule]]:
    ip = request.client.host if request.client else "unknown"
    keys = [(f"{LOGIN_THROTTLE}:ip", ip, throttle.IP)]
    account = email.strip().lower()[:320]  # as the API's guard reads the email
    if account:
        keys.append((f"{LOGIN_THROTTLE}:account", account, throttle.ACCOUNT))
        keys.append((f"{LOGIN_THROTTLE}:consecutive", account, throttle.LOCKOUT))  # as the API's guard
    return keys


def _count_attempt(db: SessionDep, request: Request, resources: ResourcesDep, email: str) -> None:
    """Counts this password attempt per IP and per account, or raises `throttle.Throttled` while either
    must wait. The first attempt that has to wait is audited as a lockout, once."""
    for scope, key, rule in _throttle_keys(request, email):
        count = throttle.attempt(resources.engine, scope, key, rule)
        if rule.delay(count) > 0 and rule.delay(count - 1) == 0:
            actor = request_actor(request, "anonymous", scope.rsplit(":", 1)[-1])
            detail = {"action": LOGIN_THROTTLE, "scope": scope}
            audit.record(db, action="throttle.lockout", actor=actor, detail=detail)
            db.commit()
            if rule is throttle.LOCKOUT:
                throttling.tell_owner(request, throttling.preparer_owner, key)


@router.post("/login")
def login(
    request: Request,
    db: SessionDep,
    resources: ResourcesDep,
    email: Annotated[str, Form(max_length=254)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    next: Annotated[str, Form()] = "/preparer",
) -> Response:
    target = safe_next(next)
    try:
        _count_attempt(db, request, resources, email)
    except throttle.Throttled as exc:
        response = _login_page(request, target, exc.message, status.HTTP_429_TOO_MANY_REQUESTS, email)
        response.headers["Retry-After"] = str(exc.retry_after)
        return response
    try:
        preparer = auth.check_password(db, request, email, password)
    except ServiceError as exc:  # a wrong guess: it stays counted
        return _login_page(request, target, exc.message, exc.status_code, email)
    for scope, key, _rule in _throttle_keys(request, email):
        # The account's count is cleared; the IP gets back this one attempt (an office logs in many people).
        throttle.succeeded(resources.engine, scope, key, forget=not scope.endswith(":ip"))
    if auth.is_enrolled(db, preparer.id or 0):
        response = see_other(f"/preparer/login/code?next={next_param(target)}")
        auth.start_pending(db, request, response, resources, preparer, auth.CODE_KIND)
    else:
        response = see_other(f"/preparer/enrol?next={next_param(target)}")
        auth.start_pending(db, request, response, resources, preparer, auth.ENROL_KIND)
    return response


# ---- the code at each login ------------------------------------------------------------------------------


def _code_page(request: Request, next_url: str, error: str | None = None, status_code: int = 200) -> Response:
    return render(
        request, "preparer/code.html", {"next": next_url, "error": error, "page": "login"}, status_code
    )


@router.get("/login/code")
def code_page(request: Request, db: SessionDep, resources: ResourcesDep, next: str | None = None) -> Response:
    try:
        auth.pending(db, request, resources, auth.CODE_KIND)
    except ServiceError as exc:
        return _login_page(request, safe_next(next), exc.message, exc.status_code)
    return _code_page(request, safe_next(next))


@router.post("/login/code")
def finish_login(
    request: Request,
    db: SessionDep,
    resources: ResourcesDep,
    code: Annotated[str, Form(max_length=40)] = "",
    next: Annotated[str, Form()] = "/preparer",
) -> Response:
    target = safe_next(next)
    try:
        preparer = auth.pending(db, request, resources, auth.CODE_KIND)
    except ServiceError as exc:
        return _login_page(request, target, exc.message, exc.status_code)
    try:
        method = auth.check_second_factor(db, request, resources, preparer, code)
    except ServiceError as exc:
        return _code_page(request, target, exc.message, exc.status_code)
    response = see_other(target)
    auth.end_pending(db, request, response, resources)
    auth.start_session(db, request, response, resources, preparer, method)
    return response


@router.post("/login/cancel")
def cancel_login(request: Request, db: SessionDep, resources: ResourcesDep) -> Response:
    response = see_other("/preparer/login")
    auth.end_pending(db, request, response, resources)
    return response


# ---- first login: set up the authenticator -------------------------------------------------------------


def _enrol_page(
    request: Request,
    db: SessionDep,
    resources: ResourcesDep,
    preparer: Preparer,
    next_url: str,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    secret = auth.enrolment_secret(db, resources, preparer)
    uri = auth.provisioning_uri(db, secret, preparer)
    context = {
        "next": next_url,
        "error": error,
        "qr": auth.qr_svg(uri),
        "secret": auth.grouped(secret),
        "email": preparer.email,
        "page": "login",
    }
    return render(request, "preparer/enrol.html", context, status_code)


@router.get("/enrol")
def enrol_page(
    request: Request, db: SessionDep, resources: ResourcesDep, next: str | None = None
) -> Response:
    try:
        preparer = auth.pending(db, request, resources, auth.ENROL_KIND)
    except ServiceError as exc:
        return _login_page(request, safe_next(next), exc.message, exc.status_code)
    return _enrol_page(request, db, resources, preparer, safe_next(next))


@router.post("/enrol")
def enrol(
    request: Request,
    db: SessionDep,
    resources: ResourcesDep,
    code: Annotated[str, Form(max_length=40)] = "",
    next: Annotated[str, Form()] = "/preparer",
) -> Response:
    target = safe_next(next)
    try:
        preparer = auth.pending(db, request, resources, auth.ENROL_KIND)
    except ServiceError as exc:
        return _login_page(request, target, exc.message, exc.status_code)
    try:
        codes = auth.confirm_enrolment(db, request, resources, preparer, code)
    except ServiceError as exc:
        return _enrol_page(request, db, resources, preparer, target, exc.message, exc.status_code)
    # The recovery codes are shown on this response only: Portico keeps their digests, not the codes.
    response = render(
        request, "preparer/recovery_codes.html", {"codes": codes, "next": target, "first": True}
    )
    auth.end_pending(db, request, response, resources)
    auth.start_session(db, request, response, resources, preparer, "totp")
    return response


@router.post("/security/recovery-codes")
async def replace_recovery_codes(
    request: Request,
    ws: CurrentWorkspace,
    db: SessionDep,
    resources: ResourcesDep,
    current_password: Annotated[str, Form(max_length=256)] = "",
    code: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    """New codes replace the old: a second factor of their own, so the password and the authenticator are
    asked again (a session left open on a shared computer must not be enough to mint them)."""
    try:
        await my_account.confirm_identity(
            db, request, resources, ws.preparer, current_password, code, "recovery codes"
        )
    except ServiceError as exc:
        return render_account_page(request, ws, db, problem=exc, form="recovery")
    codes = auth.new_recovery_codes(db, request, resources, ws.preparer)
    return render(
        request, "preparer/recovery_codes.html", {"codes": codes, "next": "/preparer/settings", "ws": ws}
    )


@router.post("/logout")
def logout(request: Request, db: SessionDep, resources: ResourcesDep) -> Response:
    response = see_other("/preparer/login?m=logged-out")
    auth.end_session(db, request, response, resources)
    return response


# ---- joining the firm ----------------------------------------------------------------------------------


@router.get("/join/{token}")
def join_page(token: str, request: Request, db: SessionDep) -> Response:
    try:
        invite = people.open_invite(db, token)
    except ServiceError as exc:
        return render(request, "preparer/join.html", {"problem": exc.message}, exc.status_code)
    return render(request, "preparer/join.html", {"invite": invite, "token": token, "min_length": MIN_LENGTH})


@router.post("/join/{token}")
def join(
    token: str, request: Request, db: SessionDep, password: Annotated[str, Form(max_length=256)] = ""
) -> Response:
    try:
        invite = people.open_invite(db, token)
        preparer, problems = people.accept_invite(db, request, token, password)
    except ServiceError as exc:
        return render(request, "preparer/join.html", {"problem": exc.message}, exc.status_code)
    if preparer is None:
        context = {"invite": invite, "token": token, "error": " ".join(problems), "min_length": MIN_LENGTH}
        return render(request, "preparer/join.html", context, 422)
    return see_other("/preparer/login?m=joined")
