"""The client page, the dashboard's client filter and Returning badge, and roll over from the pages, through
the real stack. Another firm's client is "not found"."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from client_steps import completed_engagement, with_csrf
from journey import SPOUSE, TAXPAYER, login_preparer, make_preparer
from preparer_steps import Authenticator, api_login, enrol_directly
from sqlmodel import Session, select
from temporalio.testing import WorkflowEnvironment

from core.config import Settings
from core.context import Resources
from core.models import Engagement, Signer
from worker.main import build_worker

pytestmark = pytest.mark.e2e


@pytest.fixture
async def two_years(
    settings: Settings, api: Any, dev_server: WorkflowEnvironment
) -> AsyncIterator[dict[str, Any]]:
    """Shelby's 2025 joint return completed, then rolled over to 2026 from its page."""
    resources = Resources.from_settings(settings)
    async with (
        build_worker(dev_server.client, resources),
        api.client("198.51.100.1") as preparer,
        api.client("198.51.100.7") as shelby,
        api.client("203.0.113.1") as other_firm,
    ):
        await login_preparer(preparer, make_preparer(resources))
        secret = enrol_directly(resources, "eve@other.test", "Other Firm", "Eve Other")
        await api_login(other_firm, "eve@other.test", Authenticator(secret))
        for http in (preparer, other_firm):
            with_csrf(http, resources)
        first = await completed_engagement(preparer, shelby, TAXPAYER, spouse=SPOUSE)
        page = await preparer.get(f"/preparer/engagements/{first}")
        assert "Roll over to 2026" in page.text
        rolled = await preparer.post(f"/preparer/engagements/{first}/rollover", data={})
        assert rolled.status_code == 303, rolled.text
        second = int(
            re.search(r"/preparer/engagements/(\d+)\?m=rolled-over", rolled.headers["location"]).group(1)
        )  # type: ignore[union-attr]
        with Session(resources.engine) as db:
            key = db.exec(
                select(Signer.id).where(Signer.engagement_id == first, Signer.role == "taxpayer")
            ).one()
        yield {
            "resources": resources,
            "preparer": preparer,
            "other": other_firm,
            "first": first,
            "second": second,
            "key": key,
        }
    resources.engine.dispose()


async def test_client_page_lists_both_years_and_the_account(two_years: dict[str, Any]) -> None:
    preparer, first, second, key = (
        two_years["preparer"],
        two_years["first"],
        two_years["second"],
        two_years["key"],
    )
    # The engagement page links to its taxpayer's client page.
    page = await preparer.get(f"/preparer/engagements/{second}?m=rolled-over")
    assert "Rolled over" in page.text
    link = re.search(r'href="(/preparer/clients/\d+)" id="client-link"', page.text)
    assert link, page.text
    # Any of the person's keys (this year's signer, last year's) opens the same page.
    via_link = (await preparer.get(link.group(1))).text
    client = await preparer.get(f"/preparer/clients/{key}")
    assert client.status_code == 200
    html = client.text
    assert re.findall(r'href="/preparer/engagements/\d+"', via_link) == re.findall(
        r'href="/preparer/engagements/\d+"', html
    )
    assert html.index(f'href="/preparer/engagements/{second}"') < html.index(
        f'href="/preparer/engagements/{first}"'
    )
    assert "2026" in html and "2025" in html and "Completed" in html
    assert "she*****com" in html and TAXPAYER["email"] not in html  # masked, like everywhere
    assert "shelby" in html and "Last sign-in" in html  # the account: user name, when they last signed in
    assert f'href="/preparer?client={key}"' in html
    # A second roll over from the page is refused with the reason, on the engagement page.
    again = await preparer.post(f"/preparer/engagements/{first}/rollover", data={})
    assert again.status_code == 409 and "already exists" in again.text

    # New engagement for this client: the form comes filled in, by a POST (no SSN in any URL).
    form = await preparer.post(f"/preparer/clients/{key}/new-engagement", data={})
    assert form.status_code == 200
    assert (
        'value="Shelby"' in form.text and 'value="Jordan"' in form.text and 'value="123456789"' in form.text
    )


async def test_another_firm_gets_not_found(two_years: dict[str, Any]) -> None:
    other, key, first = two_years["other"], two_years["key"], two_years["first"]
    assert (await other.get(f"/preparer/clients/{key}")).status_code == 404
    assert (await other.post(f"/preparer/clients/{key}/new-engagement", data={})).status_code == 404
    assert (await other.post(f"/preparer/engagements/{first}/rollover", data={})).status_code == 404
    bulk = await other.post("/preparer/engagements/rollover", data={"ids": [str(first)]})
    assert bulk.status_code == 404 and "Shelby" not in bulk.text
    with Session(two_years["resources"].engine) as db:
        assert len(db.exec(select(Engagement.id)).all()) == 2
        assert (await other.get(f"/preparer?client={key}")).text.count("row-link") == 0


async def test_dashboard_client_filter_and_returning_badge(two_years: dict[str, Any]) -> None:
    preparer, first, second, key = (
        two_years["preparer"],
        two_years["first"],
        two_years["second"],
        two_years["key"],
    )
    other = await preparer.post(
        "/api/engagements",
        json={
            "tax_year": 2026,
            "taxpayer": {
                "first_name": "Casey",
                "last_name": "Whitfield",
                "ssn": "321-54-9876",
                "email": "casey@example.com",
            },
        },
    )
    assert other.status_code == 201
    for _ in range(100):  # the workflow writes the dashboard's row a moment later
        everyone = (await preparer.get("/preparer")).text
        if f'id="row-{other.json()["id"]}"' in everyone and f'id="row-{second}"' in everyone:
            break
        await asyncio.sleep(0.1)
    assert f'id="row-{other.json()["id"]}"' in everyone
    only_shelby = (await preparer.get(f"/preparer?client={key}")).text
    rows = re.findall(r'id="row-(\d+)"', only_shelby)
    assert sorted(map(int, rows)) == sorted([first, second])
    assert "Showing one client" in only_shelby
    # The JSON API filters the same way.
    listed = (await preparer.get("/api/engagements", params={"client": key})).json()
    assert sorted(item["id"] for item in listed["items"]) == sorted([first, second])

    # The 2026 return is a returning client's; the 2025 one and the newcomer are not.
    def badge(html: str, engagement_id: int) -> bool:
        row = html[html.index(f'id="row-{engagement_id}"') :]
        return "returning-badge" in row[: row.index("</tr>")]

    assert badge(everyone, second) and not badge(everyone, first) and not badge(everyone, other.json()["id"])
    # The bulk form offers completed engagements only.
    assert f'name="ids" value="{first}"' in everyone and f'name="ids" value="{second}"' not in everyone
    bulk = await preparer.post("/preparer/engagements/rollover", data={"ids": [str(first), str(second)]})
    assert bulk.status_code == 200 and "0 created, 2 skipped" in bulk.text
