"""Answering the development provider's identity questions as a signer who knows their own facts would
(or deliberately wrongly), through the API or a Chromium page. The dev provider asks about the street,
city, ZIP code, birth year and birth month the preparer entered (esign/proofing.py)."""

from __future__ import annotations

import calendar
import datetime as dt
from typing import Any

import httpx

from esign.proofing import NONE_OF_THE_ABOVE

TAXPAYER_DETAILS = {
    "date_of_birth": "1984-03-09",
    "street": "1200 Oak Ridge Rd Apt 4",
    "city": "Brookline",
    "state": "MA",
    "zip": "02446",
}
SPOUSE_DETAILS = {
    "date_of_birth": "1986-11-23",
    "street": "1200 Oak Ridge Rd Apt 4",
    "city": "Brookline",
    "state": "MA",
    "zip": "02446",
}


def truths(details: dict[str, str]) -> list[str]:
    born = dt.date.fromisoformat(details["date_of_birth"])
    return ["Oak Ridge Rd", details["city"], details["zip"], str(born.year), calendar.month_name[born.month]]


def right_choice(choices: list[tuple[str, str]], details: dict[str, str]) -> str:
    """The id of the choice a person who knows `details` picks: their own fact, else None of the above."""
    known = {t.lower() for t in truths(details)}
    mine = [cid for cid, text in choices if text.lower() in known]
    return mine[0] if mine else next(cid for cid, text in choices if text == NONE_OF_THE_ABOVE)


def answers(questions: list[dict[str, Any]], details: dict[str, str], right: int) -> dict[str, str]:
    """Answers to a set with exactly `right` right answers (the first ones), the rest wrong."""
    out = {}
    for index, q in enumerate(questions):
        choices = [(c["id"], c["text"]) for c in q["choices"]]
        good = right_choice(choices, details)
        out[q["id"]] = good if index < right else next(cid for cid, _ in choices if cid != good)
    return out


async def answer_a_set(http: httpx.AsyncClient, details: dict[str, str], right: int) -> dict[str, Any]:
    """Starts (or reopens) a set and answers it with `right` right answers; the signer's standing after."""
    started = await http.post("/api/taxpayer/identity/sets")
    assert started.status_code == 200, started.text
    body = started.json()
    graded = await http.post(
        f"/api/taxpayer/identity/sets/{body['id']}/answers",
        json={"answers": answers(body["questions"], details, right)},
    )
    assert graded.status_code == 200, graded.text
    result: dict[str, Any] = graded.json()
    return result


async def enter_details(preparer: httpx.AsyncClient, eid: int, role: str, details: dict[str, str]) -> None:
    response = await preparer.put(f"/api/engagements/{eid}/signers/{role}/identity-details", json=details)
    assert response.status_code == 200, response.text


async def answer_in_page(page: Any, details: dict[str, str], right: int) -> None:
    """On the identity page's open set: `right` right answers (the first questions), the rest wrong, then
    Submit."""
    questions = page.locator("fieldset[data-question]")
    for index in range(await questions.count()):
        labels = questions.nth(index).locator("label.choice")
        texts = [text.strip() for text in await labels.all_inner_texts()]
        good = int(right_choice([(str(i), t) for i, t in enumerate(texts)], details))
        pick = good if index < right else (good + 1) % len(texts)
        await labels.nth(pick).click()
    await page.get_by_role("button", name="Submit my answers").click()
