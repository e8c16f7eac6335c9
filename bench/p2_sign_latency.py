"""P2: from the Sign click to "Signed!" (API, workflow update, signing activity), against raw pyHanko."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable
from dataclasses import dataclass

from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers

from bench import Row, journey, timeline
from bench.embedded import EmbeddedStack, close, cookie_header
from bench.stats import median, ms, percentile
from esign import pdfsign, stamp

P50_RATIO = 1.3
P95_LIMIT = 0.250
FORM = journey.make_pdf(1, "Form 8879")


@dataclass(frozen=True)
class P2Size:
    engagements: int
    """One repetition each: a fresh engagement whose taxpayer signs `signatures` documents in turn."""
    signatures: int


@dataclass
class Breakdown:
    """Medians over one engagement's signatures, in seconds."""

    total: float
    engine: float
    """Update accepted → completed, less the activities' own running time: dispatch and workflow tasks."""
    activities: dict[str, float]
    outside: float
    """HTTP, the API's own work and delivering the update to the workflow, both ways."""

    def describe(self) -> str:
        parts = [f"{name} {ms(seconds)}" for name, seconds in sorted(self.activities.items())]
        if not parts:
            # The signing step as a local activity (`SIGN_LOCALLY`): the update is accepted and answered in
            # one workflow task, whose completion writes both events, so the history cannot split it.
            return (
                f"Where a signature's {ms(self.total)} goes (history timestamps, median): the signing step "
                "runs as a local activity inside the workflow task that accepts and answers the update, so "
                f"its history has no split; HTTP, API, update delivery and signing {ms(self.outside)}."
            )
        return (
            f"Where a signature's {ms(self.total)} goes (history timestamps, median): activities running "
            f"{', '.join(parts)}; Temporal dispatch and workflow tasks {ms(self.engine)}; HTTP, API and "
            f"update delivery {ms(self.outside)}."
        )


@dataclass
class P2Result:
    row: Row
    taxpayer_cookie: str
    """A verified taxpayer's session, for P4."""


async def run(stack: EmbeddedStack, size: P2Size, label: str = "") -> P2Result:
    await stack.full_journey("p2warm")
    api_p50: list[float] = []
    api_p95: list[float] = []
    cookie = ""
    breakdown = None
    for rep in range(size.engagements):
        latencies, cookie, breakdown = await _sign_in_turn(stack, f"p2r{rep}", size.signatures)
        api_p50.append(percentile(latencies, 50))
        api_p95.append(percentile(latencies, 95))
    kept, stock = _signers(stack)
    count = size.signatures * size.engagements
    raw = await asyncio.to_thread(_time_each, _raw_pyhanko, stock, count)
    floor = await asyncio.to_thread(_time_each, _raw_pyhanko, kept, count)
    ours = await asyncio.to_thread(_time_each, portico_signing_step, kept, count)
    row = _row(api_p50, api_p95, Baselines(raw, floor, ours), size, label)
    if breakdown is not None:
        row.notes.append(breakdown.describe())
    return P2Result(row, cookie)


async def _sign_in_turn(
    stack: EmbeddedStack, tag: str, count: int
) -> tuple[list[float], str, Breakdown | None]:
    """One taxpayer, `count` + 1 documents; signs `count` of them one at a time (the last stays unsigned,
    so no seal runs in the background while the next engagement is measured)."""
    engagement_id, people = await stack.onboard(tag, joint=False)
    taxpayer = people[0]
    try:
        pdfs = [(f"Form 8879 copy {i}.pdf", FORM) for i in range(count + 1)]
        per_request = stack.settings.max_files_per_request  # one upload form carries at most this many
        documents = []
        for start in range(0, len(pdfs), per_request):
            batch = pdfs[start : start + per_request]
            documents += await journey.send_documents(stack.preparer, engagement_id, batch, "taxpayer")
        latencies = []
        for document_id in documents[:count]:
            started = time.perf_counter()
            await journey.sign(taxpayer, document_id)
            latencies.append(time.perf_counter() - started)
        handle = stack.client.get_workflow_handle(stack.workflow_id(engagement_id))
        spans = await timeline.update_spans(handle, "sign-")
        return latencies, cookie_header(taxpayer.browser), _breakdown(latencies, spans)
    finally:
        await close(people)


def _breakdown(latencies: list[float], spans: list[timeline.UpdateSpan]) -> Breakdown | None:
    if not spans:
        return None
    names = sorted({name for span in spans for name in span.activities})
    activities = {name: median([span.activities.get(name, 0.0) for span in spans]) for name in names}
    engine = median([span.seconds - sum(span.activities.values()) for span in spans])
    total = median(latencies)
    return Breakdown(total, engine, activities, total - median([span.seconds for span in spans]))


def _signers(stack: EmbeddedStack) -> tuple[signers.SimpleSigner, signers.SimpleSigner]:
    """Portico's signer (the key parsed once, at start-up) and pyHanko's stock SimpleSigner, which parses
    the key again at each signature; both from the worker's own key and certificate files."""
    paths, _ = pdfsign.ensure_dev_certificates(stack.settings.data_dir)
    kept = pdfsign.load_signer(paths.signing_key, paths.signing_cert, [paths.ca_cert])
    stock = signers.SimpleSigner.load(
        str(paths.signing_key), str(paths.signing_cert), ca_chain_files=[str(paths.ca_cert)]
    )
    if stock is None:
        raise RuntimeError(f"pyHanko cannot load {paths.signing_key}")
    return kept, stock


def _raw_pyhanko(signer: signers.SimpleSigner) -> None:
    """pyHanko alone, used well: one invisible PAdES signature, space reserved (no dry run)."""
    meta = signers.PdfSignatureMetadata(
        field_name="Taxpayer", subfilter=fields.SigSeedSubFilter.PADES, md_algorithm="sha256"
    )
    writer = IncrementalPdfFileWriter(io.BytesIO(FORM), strict=True)
    signers.PdfSigner(meta, signer).sign_pdf(
        writer, output=io.BytesIO(), bytes_reserved=pdfsign.contents_reservation(signer)
    )


_PNG = journey.signature_png()


def portico_signing_step(signer: signers.SimpleSigner) -> bytes:
    """What the signing activity asks of pyHanko: the visible stamp and the reserved certificate page."""
    visible = pdfsign.VisibleSignature(
        _PNG, stamp.StampText("Shelby Oneil", "Taxpayer - signed electronically")
    )
    return pdfsign.sign_pdf(
        FORM,
        signer,
        field_name="Taxpayer",
        signer_name="Shelby Oneil",
        visible=visible,
        reserve_certificate_page=True,
    )


def _time_each(
    action: Callable[[signers.SimpleSigner], object], signer: signers.SimpleSigner, count: int
) -> list[float]:
    action(signer)  # warm-up: fonts, caches
    out = []
    for _ in range(count):
        started = time.perf_counter()
        action(signer)
        out.append(time.perf_counter() - started)
    return out


@dataclass
class Baselines:
    """In-process signing times, each signature timed alone, in seconds."""

    raw: list[float]
    """Raw pyHanko as shipped (stock SimpleSigner): the row's baseline, as it always was."""
    floor: list[float]
    """Raw pyHanko with the key parsed once, as Portico's signer keeps it: the floor."""
    ours: list[float]
    """Portico's PDF layer: visible stamp, reserved certificate page, the kept key."""


def _row(api_p50: list[float], api_p95: list[float], base: Baselines, size: P2Size, label: str) -> Row:
    p50, p95 = median(api_p50), median(api_p95)
    raw, floor = percentile(base.raw, 50), percentile(base.floor, 50)
    ratio = p50 / raw
    return Row(
        key="P2",
        what='Sign click → "Signed!" (API round trip, workflow update, signing activity)',
        measured=f"p50 {ms(p50)}, p95 {ms(p95)}",
        baseline=f"p50 {ms(raw)} raw pyHanko as shipped",
        ratio=f"{ratio:.2f}x (p50)",
        target=f"p50 ≤ {P50_RATIO}x baseline, p95 < {P95_LIMIT * 1000:.0f} ms",
        passed=ratio <= P50_RATIO and p95 < P95_LIMIT,
        notes=[
            f"{size.signatures} signatures in turn per engagement, median of {size.engagements} engagement(s)"
            f"{label}. Same one-page PDF and key in both; raw pyHanko signs invisibly with space reserved, "
            f"with its stock SimpleSigner, which parses the private key again at each signature. The floor, "
            f"raw pyHanko with the key parsed once as Portico's signer keeps it: p50 {ms(floor)} "
            f"({p50 / floor:.1f}x). Portico's PDF layer alone (visible stamp with the drawn signature, "
            f"reserved certificate page, kept key), in one process: p50 {ms(percentile(base.ours, 50))}.",
        ],
    )
