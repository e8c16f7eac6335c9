"""The workspace pages over HTTP: every page renders, forms validate, and actions reach the workflow."""

from __future__ import annotations

import asyncio
import re

import pytest
from pdfs import make_pdf
from preparer_steps import Authenticator, api_enrol, csrf_of, enrol_directly, page_login, post_form
from sqlmodel import Session, select

from core.context import Resources
from core.models import AuditEntry, EngagementStatus, FirmSettings, MessageTemplate, Signer

pytestmark = pytest.mark.e2e


async def wait_for(resources: Resources, eid: int, stage: str, timeout: float = 20) -> EngagementStatus:
    for _ in range(int(timeout / 0.1)):
        with Session(resources.engine) as db:
            row = db.get(EngagementStatus, eid)
            if row is not None and row.stage == stage:
                return row
        await asyncio.sleep(0.1)
    raise AssertionError(f"engagement {eid} never reached {stage}")


async def test_new_engagement_page_validates_and_creates(api, worker) -> None:  # type: ignore[no-untyped-def]
    phone = Authenticator(enrol_directly(worker, "ada@firm.test", "Lovelace Tax"))
    async with api.client() as http:
        await page_login(http, "ada@firm.test", phone)
        bad = await post_form(
            http,
            "/preparer/engagements/new",
            "/preparer/engagements/new",
            {
                "tax_year": "1999",
                "taxpayer_first_name": "Shelby",
                "taxpayer_last_name": "",
                "taxpayer_ssn": "000-12-3456",
                "taxpayer_phone": "12",
                "taxpayer_time_zone": "Mars/Olympus",
            },
        )
        assert bad.status_code == 422
        for text in (
            "Enter a tax year",
            "Enter the last name",
            "nine digits",
            "US phone number",
            "time zone",
        ):
            assert text in bad.text, text
        good = await post_form(
            http,
            "/preparer/engagements/new",
            "/preparer/engagements/new",
            {
                "tax_year": "2025",
                "taxpayer_first_name": "Shelby",
                "taxpayer_last_name": "O'Neil",
                "taxpayer_ssn": "123 45 6789",
                "taxpayer_phone": "(702) 555-0197",
                "taxpayer_email": "Shelby.ONeil@Example.com",
                "taxpayer_time_zone": "America/Los_Angeles",
            },
        )
        assert good.status_code == 303, good.text
        eid = int(re.search(r"/engagements/(\d+)", good.headers["location"]).group(1))  # type: ignore[union-attr]
        with Session(worker.engine) as db:
            signer = db.exec(select(Signer).where(Signer.engagement_id == eid)).one()
            assert signer.phone == "+17025550197" and signer.email == "shelby.oneil@example.com"
            assert worker.cipher.decrypt_text(signer.ssn_encrypted, "ssn") == "123456789"
        await wait_for(worker, eid, "created")
        page = await http.get(good.headers["location"])
        assert page.status_code == 200 and "Engagement created" in page.text
        assert "Customer Portal" in page.text and "Phone: text 70*****97" in page.text

        sent = await post_form(
            http,
            f"/preparer/engagements/{eid}",
            f"/preparer/engagements/{eid}/invite",
            {"role": "taxpayer", "channel": "email"},
        )
        assert sent.status_code == 303
        assert "The link has successfully been sent!" in (await http.get(sent.headers["location"])).text
        await wait_for(worker, eid, "invited")

        # Documents before the client verified: the workflow refuses, the page says why.
        page = await http.get(f"/preparer/engagements/{eid}")
        refused = await http.post(
            f"/preparer/engagements/{eid}/documents",
            data={"csrf_token": csrf_of(page.text), "who-0": "taxpayer"},
            files={"file-0": ("8879.pdf", make_pdf(1), "application/pdf")},
        )
        assert refused.status_code == 409 and "verified" in refused.text

        live = await http.get(f"/preparer/engagements/{eid}/live")
        assert live.status_code == 200 and 'id="timeline" hx-swap-oob="true"' in live.text
        dashboard = await http.get("/preparer?q=shel")
        assert f'id="row-{eid}"' in dashboard.text
        assert f'id="row-{eid}"' not in (await http.get("/preparer?q=nobody")).text
        assert f'id="row-{eid}"' in (await http.get("/preparer?q=702555")).text
        assert f'id="row-{eid}"' in (await http.get("/preparer?q=shelby.oneil@ex")).text
        fragment = await http.get("/preparer/dashboard/results?stage=invited")
        assert f'id="row-{eid}"' in fragment.text and "<html" not in fragment.text

        cancelled = await post_form(
            http,
            f"/preparer/engagements/{eid}",
            f"/preparer/engagements/{eid}/cancel",
            {"reason": "duplicate"},
        )
        assert cancelled.status_code == 303
        await wait_for(worker, eid, "cancelled")
        with Session(worker.engine) as db:
            actions = {
                (a.action, a.actor)
                for a in db.exec(select(AuditEntry).where(AuditEntry.engagement_id == eid))
            }
        preparer_actor = next(actor for action, actor in actions if action == "engagement.create")
        for action in ("engagement.create", "engagement.viewed", "invite.requested", "engagement.cancelled"):
            assert (action, preparer_actor) in actions, action


async def test_settings_pages_store_schedule_and_templates(api, worker) -> None:  # type: ignore[no-untyped-def]
    phone = Authenticator(enrol_directly(worker, "ada@firm.test", "Lovelace Tax"))
    async with api.client() as http:
        await page_login(http, "ada@firm.test", phone)
        page = await http.get("/preparer/settings")
        assert page.status_code == 200 and "Recovery codes left" in page.text
        values = {
            "invite_reminder_days": "3",
            "invite_reminders_max": "2",
            "invite_expires_days": "10",
            "verify_reminder_hours": "2",
            "signature_reminder_first_days": "1",
            "signature_reminder_interval_days": "2",
            "signature_reminders_max": "5",
            "quiet_hours_start": "20",
            "quiet_hours_end": "9",
            "time_zone": "America/Chicago",
        }
        bad = await post_form(
            http, "/preparer/settings", "/preparer/settings/schedule", {**values, "quiet_hours_end": "25"}
        )
        assert bad.status_code == 422 and "from 0 to 23" in bad.text
        ok = await post_form(http, "/preparer/settings", "/preparer/settings/schedule", values)
        assert ok.status_code == 303
        with Session(worker.engine) as db:
            firm = db.exec(select(FirmSettings)).one()
            assert (firm.invite_reminder_days, firm.quiet_hours_end, firm.time_zone) == (
                3,
                9,
                "America/Chicago",
            )

        url = "/preparer/settings/templates/invite/sms"
        editor = await http.get(url)
        assert "{link}" in editor.text and "default wording" in editor.text
        preview = await http.post(
            url + "/preview",
            data={"body": "Hi {first_name}, {firm_name} here: {link}", "csrf_token": csrf_of(editor.text)},
        )
        assert "Hi Shelby, Lovelace Tax here: https://portal.example.com/invite/abc123" in preview.text
        unknown = await post_form(http, url, url, {"body": "Hi {name} {link}", "action": "save"})
        assert unknown.status_code == 422 and "Unknown placeholder {name}" in unknown.text
        missing = await post_form(http, url, url, {"body": "Hi there", "action": "save"})
        assert missing.status_code == 422 and "must contain {link}" in missing.text
        saved = await post_form(http, url, url, {"body": "{firm_name}: your portal {link}", "action": "save"})
        assert saved.status_code == 303
        with Session(worker.engine) as db:
            row = db.exec(select(MessageTemplate)).one()
            assert (row.purpose, row.channel, row.body) == (
                "invite",
                "sms",
                "{firm_name}: your portal {link}",
            )
        reset = await post_form(http, url, url, {"action": "reset"})
        assert reset.status_code == 303
        with Session(worker.engine) as db:
            assert db.exec(select(MessageTemplate)).first() is None


async def test_invite_a_colleague_who_joins_and_is_later_deactivated(api, worker) -> None:  # type: ignore[no-untyped-def]
    from journey import latest

    from core.models import Preparer

    phone = Authenticator(enrol_directly(worker, "ada@firm.test", "Lovelace Tax"))
    async with api.client() as http, api.client() as newcomer:
        await page_login(http, "ada@firm.test", phone)
        bad = await post_form(
            http, "/preparer/settings", "/preparer/settings/preparers/invite", {"name": "", "email": "nope"}
        )
        assert bad.status_code == 422 and "Enter their name." in bad.text
        sent = await post_form(
            http,
            "/preparer/settings",
            "/preparer/settings/preparers/invite",
            {"name": "Carol Colleague", "email": "carol@example.com"},
        )
        assert sent.status_code == 303
        message = await latest(http, "preparer_invite", "carol@example.com")
        link = re.search(r"/preparer/join/[A-Za-z0-9_\-]+", message["body"]).group(0)  # type: ignore[union-attr]
        weak = await post_form(newcomer, link, link, {"password": "password"})
        assert weak.status_code == 422
        joined = await post_form(newcomer, link, link, {"password": "a long and private passphrase"})
        assert joined.status_code == 303 and joined.headers["location"] == "/preparer/login?m=joined"
        assert (await newcomer.get(link)).status_code == 404  # the link works once
        login = await newcomer.post(
            "/api/preparer/login",
            json={"email": "carol@example.com", "password": "a long and private passphrase"},
        )
        assert login.json()["next"] == "enrol"  # and two-step login is required of her too
        with Session(worker.engine) as db:
            carol = db.exec(select(Preparer).where(Preparer.email == "carol@example.com")).one()
            ada = db.exec(select(Preparer).where(Preparer.email == "ada@firm.test")).one()
            assert carol.firm_id == ada.firm_id
        assert (await newcomer.get("/api/engagements")).status_code == 403  # not before the set-up
        await api_enrol(newcomer)
        assert (await newcomer.get("/api/engagements")).status_code == 200
        off = await post_form(
            http, "/preparer/settings", f"/preparer/settings/preparers/{carol.id}/deactivate", {}
        )
        assert off.status_code == 303
        assert (await newcomer.get("/api/engagements")).status_code == 401  # her sessions ended at once
        self_off = await post_form(
            http, "/preparer/settings", f"/preparer/settings/preparers/{ada.id}/deactivate", {}
        )
        assert self_off.status_code == 409
