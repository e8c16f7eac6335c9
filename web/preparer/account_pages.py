"""My account: the preparer changes their own password and login email, each change confirmed with the
current password and an authenticator code. Rules: `services.preparer_account`; these handlers render
and redirect."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response

from services import ServiceError
from services import preparer_account as account
from services import preparer_auth as auth
from services.deps import OutboxDep, ResourcesDep, SessionDep
from web.preparer.rendering import CurrentWorkspace, Workspace, render
from web.security import check_csrf
from web.toolkit import form_problem, see_other, with_refusal_headers

router = APIRouter(prefix="/preparer/account", include_in_schema=False, dependencies=[Depends(check_csrf)])

# Shown after the redirect that follows a change, by key (a URL never puts text into the page).
NOTICES = {
    "password-changed": "Your password is changed. Every other session of yours is logged out.",
    "email-changed": "Your login email is changed. Log in with it from now on.",
    "phone-saved": "Your phone is saved: your clients see it in their portal.",
}


def render_account_page(
    request: Request,
    ws: Workspace,
    db: SessionDep,
    *,
    problem: ServiceError | None = None,
    form: str = "",
    pending: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    """The page; `problem` is shown at the top and at the form (`form`) and field it concerns."""
    context = {
        "ws": ws,
        "page": "account",
        "codes_left": auth.recovery_codes_left(db, ws.preparer.id or 0),
        **form_problem(problem, form),
        "pending": pending,
        "values": values or {},
        "code_minutes": int(account.CODE_LIFETIME.total_seconds() // 60),
    }
    status_code = problem.status_code if problem else 200
    page = render(request, "preparer/account.html", context, status_code, notices=NOTICES)
    return with_refusal_headers(page, problem)


@router.get("")
def account_page(request: Request, ws: CurrentWorkspace, db: SessionDep) -> Response:
    return render_account_page(request, ws, db)


@router.post("/phone")
def change_phone(
    request: Request,
    ws: CurrentWorkspace,
    db: SessionDep,
    phone: Annotated[str, Form(max_length=60)] = "",
) -> Response:
    try:
        account.change_phone(db, request, ws.preparer, phone)
    except ServiceError as exc:
        values = {"phone": phone.strip()}
        return render_account_page(request, ws, db, problem=exc, form="phone", values=values)
    return see_other("/preparer/account?m=phone-saved#phone")


@router.post("/password")
async def change_password(
    request: Request,
    ws: CurrentWorkspace,
    db: SessionDep,
    resources: ResourcesDep,
    outbox: OutboxDep,
    current_password: Annotated[str, Form(max_length=256)] = "",
    code: Annotated[str, Form(max_length=40)] = "",
    new_password: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    response = see_other("/preparer/account?m=password-changed")
    try:
        await account.change_password(
            db, resources, request, response, outbox, ws.preparer, current_password, code, new_password
        )
    except ServiceError as exc:
        return render_account_page(request, ws, db, problem=exc, form="password")
    return response


def _pending_change(value: str, masked: str) -> dict[str, str]:
    """A change waiting for its code. The new address goes back into the page (it is stored nowhere): the
    code is bound to it."""
    return {"value": value.strip(), "masked": masked}


@router.post("/email/code")
async def send_email_code(
    request: Request,
    ws: CurrentWorkspace,
    db: SessionDep,
    resources: ResourcesDep,
    outbox: OutboxDep,
    new_email: Annotated[str, Form(max_length=254)] = "",
    current_password: Annotated[str, Form(max_length=256)] = "",
    code: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    try:
        sent = await account.send_email_code(
            db, resources, request, outbox, ws.preparer, new_email, current_password, code
        )
    except ServiceError as exc:
        values = {"new_email": new_email.strip()}
        return render_account_page(request, ws, db, problem=exc, form="email", values=values)
    return render_account_page(request, ws, db, pending=_pending_change(new_email, sent.masked_destination))


@router.post("/email")
async def confirm_email(
    request: Request,
    ws: CurrentWorkspace,
    db: SessionDep,
    resources: ResourcesDep,
    outbox: OutboxDep,
    new_email: Annotated[str, Form(max_length=254)] = "",
    email_code: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    try:
        await account.confirm_email(db, resources, request, outbox, ws.preparer, new_email, email_code)
    except ServiceError as exc:
        pending = None
        if account.change_pending(db, ws.preparer.id or 0):  # a wrong code, or wait: try the code again
            pending = _pending_change(new_email, account.masked_or_blank(new_email))
        return render_account_page(request, ws, db, problem=exc, form="email", pending=pending)
    return see_other("/preparer/account?m=email-changed")
