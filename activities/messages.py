"""The words of every message Portico sends. Texts stay short: one SMS segment where possible."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MessageContext:
    firm_name: str
    recipient_name: str
    channel: str
    link: str = ""
    code: str = ""
    code_minutes: int = 10
    reminder_number: int = 0
    engagement_label: str = ""


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    body: str


def render(purpose: str, ctx: MessageContext) -> RenderedMessage:
    renderer = _RENDERERS.get(purpose)
    if renderer is None:
        raise ValueError(f"no message template for {purpose!r}")
    return renderer(ctx)


def _invite(ctx: MessageContext) -> RenderedMessage:
    if ctx.channel == "sms":
        return RenderedMessage(
            "", f"{ctx.firm_name}: your tax documents portal is ready. Create your account: {ctx.link}"
        )
    return RenderedMessage(
        f"{ctx.firm_name} invites you to your client portal",
        f"Hello {ctx.recipient_name},\n\n"
        f"{ctx.firm_name} uses Portico to exchange and sign your tax documents.\n"
        f"Create your account here:\n\n{ctx.link}\n\n"
        "You will need your last name and the last four digits of your Social Security number.\n",
    )


def _invite_reminder(ctx: MessageContext) -> RenderedMessage:
    if ctx.channel == "sms":
        return RenderedMessage(
            "", f"Reminder from {ctx.firm_name}: please create your portal account: {ctx.link}"
        )
    return RenderedMessage(
        f"Reminder: {ctx.firm_name} is waiting for you",
        f"Hello {ctx.recipient_name},\n\nYour client portal is ready but your account is not created yet:\n\n"
        f"{ctx.link}\n",
    )


def _code(ctx: MessageContext) -> RenderedMessage:
    text = f"Your Portico verification code is {ctx.code}. It expires in {ctx.code_minutes} minutes."
    if ctx.channel == "sms":
        return RenderedMessage("", f"{text} Don't share it.")
    return RenderedMessage(
        "Your Portico verification code",
        f"Hello {ctx.recipient_name},\n\n{text}\n\nIf you did not ask for it, you can ignore this message.\n",
    )


def _verify_reminder(ctx: MessageContext) -> RenderedMessage:
    text = f"{ctx.firm_name}: finish setting up your portal account by verifying it with a one-time code."
    return RenderedMessage("Finish verifying your portal account", f"{text}\n{ctx.link}")


def _documents_ready(ctx: MessageContext) -> RenderedMessage:
    text = f"{ctx.firm_name} sent your tax return documents. Log in to review and sign them."
    return RenderedMessage("Your tax documents are ready", f"{text}\n{ctx.link}")


def _signature_reminder(ctx: MessageContext) -> RenderedMessage:
    text = f"Reminder from {ctx.firm_name}: your tax documents are waiting for your signature."
    return RenderedMessage("Your signature is needed", f"{text}\n{ctx.link}")


def _needs_attention(ctx: MessageContext) -> RenderedMessage:
    return RenderedMessage(
        f"Needs attention: {ctx.engagement_label}",
        f"The engagement {ctx.engagement_label} is stalled and needs your attention:\n{ctx.link}",
    )


def _completed(ctx: MessageContext) -> RenderedMessage:
    return RenderedMessage(
        f"Signed: {ctx.engagement_label}",
        f"Every required signature is in for {ctx.engagement_label}.\n{ctx.link}",
    )


def _login_code(ctx: MessageContext) -> RenderedMessage:
    text = f"Your Portico login code is {ctx.code}. It expires in {ctx.code_minutes} minutes."
    if ctx.channel == "sms":
        return RenderedMessage("", f"{text} Don't share it.")
    return RenderedMessage(
        "Your Portico login code",
        f"Hello {ctx.recipient_name},\n\nSomeone is logging in to your {ctx.firm_name} portal from a browser "
        f"Portico has not seen before.\n\n{text}\n\n"
        "If this was not you, do not share the code: change your password and tell your preparer.\n",
    )


_RENDERERS = {
    "invite": _invite,
    "invite_reminder": _invite_reminder,
    "code": _code,
    "verify_reminder": _verify_reminder,
    "documents_ready": _documents_ready,
    "signature_reminder": _signature_reminder,
    "needs_attention": _needs_attention,
    "completed": _completed,
    "login_code": _login_code,
}
