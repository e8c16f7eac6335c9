"""Shared Playwright fixtures: Debian's Chromium, the app on a real uvicorn server, a real worker.

The preparer side is driven through the JSON API in-process; the taxpayer uses the real browser against
the live server. Screenshots go to test-output/screenshots/ (gitignored).
"""

from __future__ import annotations

import asyncio
import math
import re
import socket
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from importlib import resources as package_files
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from conftest import ON_CI
from journey import PASSWORD, login_preparer, make_preparer
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect
from temporalio.testing import WorkflowEnvironment

from core.config import Settings
from core.context import Resources
from portico.app import create_app
from worker.main import build_worker

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-output" / "screenshots"
DESKTOP = {"viewport": {"width": 1280, "height": 900}}
PHONE = {
    "viewport": {"width": 375, "height": 812},
    "device_scale_factor": 3,
    "is_mobile": True,
    "has_touch": True,
}


def chromium_or_skip() -> None:
    """On CI a missing Chromium fails the run; elsewhere the browser tests are skipped."""
    if not CHROMIUM.exists():
        if ON_CI:
            pytest.fail(f"{CHROMIUM} is missing on CI: install Debian's chromium package")
        pytest.skip(f"{CHROMIUM} not installed")


@pytest.fixture(scope="session")
async def chromium() -> AsyncIterator[Browser]:
    chromium_or_skip()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_ARGS)
        yield browser
        await browser.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class LiveServer:
    """The app on a real uvicorn server in a background thread (its own event loop and Temporal client)."""

    def __init__(self, settings: Settings, port: int) -> None:
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="portal-server", daemon=True)
        self.url = f"http://127.0.0.1:{port}"

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the portal server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@dataclass
class Portal:
    """A running Portico: live URL for the browser, in-process preparer client, the worker's resources."""

    url: str
    settings: Settings
    resources: Resources
    preparer: httpx.AsyncClient
    browser: Browser
    problems: list[str] = field(default_factory=list)
    contexts: list[BrowserContext] = field(default_factory=list)
    checks: list[asyncio.Future[None]] = field(default_factory=list)  # axe runs on page loads
    transport: httpx.AsyncBaseTransport | None = None  # the in-process app the preparer client talks to

    def client(self) -> httpx.AsyncClient:
        """Another person through the in-process app (own cookies), for steps no browser needs to show."""
        assert self.transport is not None
        return httpx.AsyncClient(
            transport=self.transport,
            base_url="https://portico.test",
            headers={"sec-fetch-site": "same-origin"},
        )

    async def person(self, *, phone: bool = False, width: int | None = None) -> BrowserContext:
        """A fresh browser profile (its own cookies): a different person, or the same one on a new device
        (`width`: another viewport width than the phone's or the desktop's)."""
        options: dict[str, Any] = dict(PHONE if phone else DESKTOP)
        if width:
            options["viewport"] = {**options["viewport"], "width": width}
        context = await self.browser.new_context(**options)
        context.set_default_timeout(15_000)
        context.on("page", self._watch)
        self.contexts.append(context)
        return context

    def _watch(self, page: Page) -> None:
        # Script errors and CSP violations show up as console errors: each one fails the test. A 4xx page
        # or fetch is often the point of a test (Chromium logs those too), so only failed sub-resources
        # (a missing stylesheet or script) count among the responses.
        def on_console(msg: Any) -> None:
            if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
                self.problems.append(f"{page.url}: {msg.text}")

        def on_response(response: Any) -> None:
            if response.status >= 400 and response.request.resource_type not in ("document", "fetch", "xhr"):
                self.problems.append(f"{response.url}: HTTP {response.status}")

        # Every page a test visits is checked by axe-core once loaded: a serious or critical violation
        # fails the test like a script error does.
        async def check_accessibility(url: str) -> None:
            try:
                found = await accessibility_problems(page)
            except Exception:  # the page moved on or closed before axe finished: its next load is checked
                return
            self.problems.extend(f"{url}: axe {problem}" for problem in found)

        def on_load(_: Any) -> None:
            if page.url.startswith("http"):
                self.checks.append(asyncio.ensure_future(check_accessibility(page.url)))

        page.on("console", on_console)
        page.on("response", on_response)
        page.on("pageerror", lambda exc: self.problems.append(f"{page.url}: {exc}"))
        page.on("load", on_load)

    # ---- the preparer's side, through the JSON API ----------------------------------------------------

    async def create_engagement(self, taxpayer: dict[str, str], spouse: dict[str, str] | None = None) -> int:
        body: dict[str, Any] = {"tax_year": 2025, "taxpayer": taxpayer}
        if spouse:
            body["spouse"] = spouse
        response = await self.preparer.post("/api/engagements", json=body)
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    async def invite(self, engagement_id: int, role: str, destination: str, channel: str = "email") -> str:
        response = await self.preparer.post(
            f"/api/engagements/{engagement_id}/invite", json={"role": role, "channel": channel}
        )
        assert response.status_code == 200, response.text
        message = await self.message("invite", destination)
        match = re.search(r"https?://\S+/invite/\S+", message["body"])
        assert match, message["body"]
        return match.group(0)

    async def send_documents(self, engagement_id: int, files: list[tuple[str, bytes, str]]) -> list[int]:
        parts = [("files", (name, data, "application/pdf")) for name, data, _ in files]
        response = await self.preparer.post(
            f"/api/engagements/{engagement_id}/documents",
            files=parts,
            data={"signers": [who for _, _, who in files]},
        )
        assert response.status_code == 200, response.text
        names = {name for name, _, _ in files}
        return [d["id"] for d in response.json()["documents"] if d["name"] in names]

    async def outbox(self) -> list[dict[str, Any]]:
        # A generous read timeout: on a loaded CI machine the live server may take more than httpx's 5 s.
        async with httpx.AsyncClient(base_url=self.url, timeout=30) as http:
            response = await http.get("/api/dev/outbox")
        assert response.status_code == 200, response.text
        return response.json()  # type: ignore[no-any-return]

    async def message(
        self, purpose: str, destination: str, *, newer_than: int = 0, timeout: float = 15
    ) -> dict[str, Any]:
        """The newest message of that purpose to that destination, waiting for the worker to send it."""
        deadline = time.monotonic() + timeout
        while True:
            for item in await self.outbox():
                if (
                    item["purpose"] == purpose
                    and item["destination"] == destination
                    and item["id"] > newer_than
                ):
                    return item
            if time.monotonic() > deadline:
                raise AssertionError(f"no {purpose} message to {destination}")
            await asyncio.sleep(0.1)

    async def code(self, purpose: str, destination: str, newer_than: int = 0) -> str:
        message = await self.message(purpose, destination, newer_than=newer_than)
        match = re.search(r"\b(\d{6})\b", message["body"])
        assert match, message["body"]
        return match.group(1)

    async def last_outbox_id(self) -> int:
        items = await self.outbox()
        return max((item["id"] for item in items), default=0)


@pytest.fixture
async def portal(
    settings: Settings, dev_server: WorkflowEnvironment, chromium: Browser
) -> AsyncIterator[Portal]:
    port = _free_port()
    settings.public_url = f"http://127.0.0.1:{port}"
    settings.temporal_address = dev_server.client.service_client.config.target_host
    resources = Resources.from_settings(settings)
    preparer_app = create_app(settings, temporal=dev_server.client)
    async with build_worker(dev_server.client, resources), preparer_app.router.lifespan_context(preparer_app):
        server = LiveServer(settings, port)
        await asyncio.to_thread(server.start)
        transport = httpx.ASGITransport(app=preparer_app, client=("192.0.2.10", 40000))
        same_origin = {"sec-fetch-site": "same-origin"}  # what a browser sends on Portico's own requests
        async with httpx.AsyncClient(
            transport=transport, base_url="https://portico.test", headers=same_origin
        ) as preparer:
            await login_preparer(preparer, make_preparer(resources))
            portal = Portal(server.url, settings, resources, preparer, chromium, transport=transport)
            try:
                yield portal
            finally:
                await asyncio.gather(*portal.checks, return_exceptions=True)
                for context in portal.contexts:  # no page keeps polling the server while it stops
                    await context.close()
                await asyncio.to_thread(server.stop)
                resources.engine.dispose()
        assert not portal.problems, "browser console errors:\n" + "\n".join(portal.problems)


# ---- what a person does in the browser --------------------------------------------------------------------


async def shot(page: Page, name: str) -> None:
    """A full-page screenshot, and the layout checks every page must pass at this size."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    await check_layout(page, name)
    found = await accessibility_problems(page)
    assert not found, f"{name}: axe-core found serious or critical problems:\n" + "\n".join(found)


# axe-core, from the axe-playwright-python wheel (test dependency); run through the DevTools protocol,
# which the pages' Content-Security-Policy does not apply to. Runs on one page are queued: axe refuses
# to start while it is already running.
AXE_SOURCE = (package_files.files("axe_playwright_python") / "axe.min.js").read_text()
AXE_RUN = """() => {
  window.__axeQueue = (window.__axeQueue || Promise.resolve()).catch(() => null).then(() =>
    axe.run(document, {resultTypes: ["violations"]}));
  return window.__axeQueue.then((result) => result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.slice(0, 3)
      .map((n) => n.target.join(" ")).join(", ")}`));
}"""


async def accessibility_problems(page: Page) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now (Portico's pages: a PDF
    shown in the browser's viewer is not one)."""
    if await page.evaluate("() => document.contentType") != "text/html":
        return []
    if not await page.evaluate("() => typeof window.axe === 'object'"):
        await page.evaluate(AXE_SOURCE)
    found: list[str] = await page.evaluate(AXE_RUN)
    return found


async def check_layout(page: Page, name: str) -> None:
    overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{name}: the page scrolls sideways by {overflow}px"
    small = await page.evaluate(
        """() => [...document.querySelectorAll(
                'button, a.button, input:not([type=hidden]), textarea, summary, label.check, .nav-list a')]
            .filter(el => el.offsetParent !== null && getComputedStyle(el).visibility !== 'hidden')
            .map(el => {
              // A checkbox or a visually hidden file input is operated through its label.
              const label = el.closest('label') || (el.id && document.querySelector(`label[for="${el.id}"]`));
              const target = el.matches('input[type=checkbox], input[type=file]') && label ? label : el;
              const r = target.getBoundingClientRect();
              return {el: el.outerHTML.slice(0, 80), w: r.width, h: r.height};
            })
            .filter(t => t.h < 44 || t.w < 44)"""
    )
    assert not small, f"{name}: touch targets under 44px: {small}"
    low = await page.evaluate(CONTRAST_CHECK)
    assert not low, f"{name}: text under WCAG AA contrast: {low}"


# WCAG 2 contrast of every visible text against the first opaque background behind it (AA: 4.5, large 3).
CONTRAST_CHECK = r"""() => {
  const rgb = (c) => (c.match(/[\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length === 3 || c[3] === 1) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own || el.offsetParent === null || el.closest('[disabled], .visually-hidden')) continue;
    const style = getComputedStyle(el);
    const fg = rgb(style.color).slice(0, 3), bg = background(el);
    const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    const size = parseFloat(style.fontSize), bold = Number(style.fontWeight) >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < need) out.push(`${el.tagName} "${el.textContent.trim().slice(0, 30)}" ${ratio.toFixed(2)}`);
  }
  return out;
}"""


async def register(page: Page, link: str, person: dict[str, str], username: str, **changes: str) -> None:
    await page.goto(link)
    values = {
        "User name": username,
        "Email": person["email"],
        "Phone": person["phone"],
        "Last name": person["last_name"],
        "Last 4 of SSN": person["ssn"][-4:],
        **changes,
    }
    for label, value in values.items():
        await page.get_by_label(label, exact=True).fill(value)
    await page.get_by_label("Password", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="Register").click()


async def verify(portal: Portal, page: Page, person: dict[str, str], *, remember: bool = True) -> None:
    """On the verify page: send the code by email, type it in, Verify."""
    before = await portal.last_outbox_id()
    await page.get_by_role("button", name=re.compile(r"^Send Email: ")).click()
    await expect(page.get_by_text("Code sent", exact=True)).to_be_visible()
    await enter_code(portal, page, await portal.code("code", person["email"], newer_than=before), remember)
    await expect(page.get_by_text("Your account is verified. Welcome!")).to_be_visible()


async def enter_code(portal: Portal, page: Page, code: str, remember: bool = True) -> None:
    await page.get_by_label("6-digit code").fill(code)
    if remember:
        await page.get_by_label("Remember this device for 30 days").check()
    await page.get_by_role("button", name="Verify").click()


async def _canvas_box(page: Page) -> dict[str, float]:
    canvas = page.locator("[data-signature-pad]")
    await canvas.scroll_into_view_if_needed()
    box = await canvas.bounding_box()
    assert box is not None
    return box


def _stroke(box: dict[str, float], steps: int = 40) -> list[tuple[float, float]]:
    """A signature-like wave across the box."""
    left, top, width, height = box["x"], box["y"], box["width"], box["height"]
    return [
        (left + width * (0.1 + 0.8 * i / steps), top + height * (0.5 + 0.25 * math.sin(i / 3)))
        for i in range(steps + 1)
    ]


async def draw_with_mouse(page: Page) -> None:
    points = _stroke(await _canvas_box(page))
    await page.mouse.move(*points[0])
    await page.mouse.down()
    for point in points[1:]:
        await page.mouse.move(*point, steps=2)
    await page.mouse.up()


async def draw_with_finger(page: Page) -> None:
    """A real touch gesture through the DevTools protocol: Chromium turns it into touch pointer events."""
    points = _stroke(await _canvas_box(page), steps=30)
    cdp = await page.context.new_cdp_session(page)

    async def touch(kind: str, point: tuple[float, float] | None) -> None:
        touch_points = [{"x": point[0], "y": point[1], "id": 1}] if point else []
        await cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": touch_points})

    await touch("touchStart", points[0])
    for point in points[1:]:
        await touch("touchMove", point)
    await touch("touchEnd", None)
    await cdp.detach()


async def save_signature(page: Page) -> None:
    await page.get_by_role("button", name="Save").click()
    # The drawing is cleaned in the parsing pool, whose first use in a process starts its workers: on a busy
    # 2-core machine that first save has taken over the default 5 s.
    await expect(page.locator("[data-pad-status]")).to_have_text("Signature saved", timeout=20_000)
    await agree_to_sign_electronically(page)


async def agree_to_sign_electronically(page: Page) -> None:
    """Signing needs the consent to sign electronically: from the signature page, read it and agree."""
    consent = page.get_by_role("link", name="Read the consent")
    if await consent.count():
        await consent.click()
        await page.get_by_role("button", name="I agree").click()
        await expect(page.get_by_text("Thank you: you agreed to sign electronically.")).to_be_visible()
