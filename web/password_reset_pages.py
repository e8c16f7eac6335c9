"""Pages for a forgotten password: ask for a code, then the code and a new password, then the login again.

Every rule is `services.password_reset`'s, with the API's throttles; these handlers render and redirect.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Form, Request, Response
from starlette.background import BackgroundTask

from services import ServiceError, password_reset
from services.deps import OutboxDep, ResourcesDep, SessionDep
from services.throttled_step import throttled_step
from web.account_pages import password_checklist, six_digits
from web.rendering import render
from web.security import check_csrf
from web.toolkit import see_other, with_refusal_headers

router = APIRouter(
    prefix="/portal/password-reset", include_in_schema=False, dependencies=[Depends(check_csrf)]
)
LOGIN_HELP = "Enter your user name, email address or phone number."


@router.get("")
def request_page(request: Request) -> Response:
    return render(request, "password_reset.html", {"login": "", "channel": "email"})


@router.post("")
async def request_code(
    request: Request,
    resources: ResourcesDep,
    outbox: OutboxDep,
    login: Annotated[str, Form(max_length=320)] = "",
    channel: Annotated[str, Form()] = "email",
) -> Response:
    chosen: Literal["email", "sms"] = "sms" if channel == "sms" else "email"
    context = {"login": login.strip(), "channel": chosen}
    if not login.strip():
        return render(request, "password_reset.html", {**context, "field_error": LOGIN_HELP}, 422)
    # The same throttle as POST /api/taxpayer/password-reset.
    async with throttled_step(request, password_reset.REQUEST_THROTTLE) as step:
        if step.refusal is not None:
            page = render(request, "password_reset.html", {**context, "error": step.refusal.message}, 429)
            return with_refusal_headers(page, step.refusal)
        response = see_other(f"/portal/password-reset/code?by={chosen}")
        send = password_reset.start(request, response, resources, outbox, login=login, channel=chosen)
        response.background = BackgroundTask(send)  # after the answer: known and unknown logins answer alike
    return response


def _code_page(
    request: Request,
    by: str,
    *,
    errors: dict[str, str] | None = None,
    error: str | None = None,
    code: str = "",
    status_code: int = 200,
) -> Response:
    channel: Literal["email", "sms"] = "sms" if by == "sms" else "email"
    context = {
        "by": channel,
        "sent": password_reset.neutral_answer(channel),
        "errors": errors or {},
        "error": error,
        "code": code,
        "checks": password_checklist("", "", ""),
    }
    return render(request, "password_reset_code.html", context, status_code)


@router.get("/code")
def code_page(request: Request, resources: ResourcesDep, by: str = "email") -> Response:
    if password_reset.Attempt.read(request, resources) is None:
        return see_other("/portal/password-reset")
    return _code_page(request, by)


@router.post("/password-hints")
def password_hints(request: Request, new_password: Annotated[str, Form(max_length=256)] = "") -> Response:
    return render(request, "_password_hints.html", {"checks": password_checklist(new_password, "", "")})


@router.post("/code")
async def confirm(
    request: Request,
    db: SessionDep,
    resources: ResourcesDep,
    outbox: OutboxDep,
    code: Annotated[str, Form(max_length=40)] = "",
    new_password: Annotated[str, Form(max_length=256)] = "",
    by: str = "email",
) -> Response:
    # The same throttle as POST /api/taxpayer/password-reset/confirm.
    async with throttled_step(request, password_reset.CONFIRM_THROTTLE) as step:
        if step.refusal is not None:
            page = _code_page(request, by, error=step.refusal.message, status_code=429)
            return with_refusal_headers(page, step.refusal)
        digits = six_digits(code)
        if digits is None:
            step.refuse()
            return _code_page(request, by, errors={"code": "Enter the 6-digit code."}, status_code=422)
        response = see_other("/portal/password-reset/done")
        try:
            await password_reset.confirm(
                db, request, response, resources, outbox, code=digits, new_password=new_password
            )
        except ServiceError as exc:
            step.failed(exc)
            field = exc.field if exc.field in ("code", "new_password") else "code"
            # A right code refused only for the password stays in the form: it still works.
            kept = digits if field == "new_password" else ""
            return _code_page(
                request, by, errors={field: exc.message}, code=kept, status_code=exc.status_code
            )
    return response


@router.get("/done")
def done(request: Request) -> Response:
    """The login page, saying the password is reset (the login form posts to /portal/login as ever)."""
    return render(request, "login.html", {"next": "/portal", "values": {}, "notice": password_reset.DONE})
