"""P2b: Portico's signing step alone against two open-source engines, on the same file and the same key.

Portico's step is what the signing activity asks of esign.pdfsign (a visible stamp with the drawn
signature, printed name and caption, the reserved certificate page, a PAdES signature), in this process,
with the key loaded once. The peers run in Node beside it, from bench/node (pinned in its
package-lock.json, installed by `make bench-deps`, or here when missing): Documenso's engine
`@libpdf/core` and `@signpdf/signpdf`. All three sign the same one-page PDF with the same RSA-2048 key,
certificate and CA, read from one PKCS#12 file; each times its signatures alone, after a warm-up, in its
own process, the three taking turns a few signatures at a time. Every output is checked by poppler's
pdfsig.
"""

from __future__ import annotations

import asyncio
import json
import select
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from pyhanko.sign import signers

from bench import PACKAGE_DIR, Row, journey
from bench.p2_sign_latency import FORM, portico_signing_step
from bench.stats import median, ms, percentile
from esign import pdfsign

NODE_DIR = PACKAGE_DIR / "node"
MIN_NODE_MAJOR = 20  # @libpdf/core's engines field
LIBPDF_RATIO = 3.0
PASSWORD = "p2b-bench"
INSTALL_SECONDS = 240
PEER_SECONDS = 300


@dataclass(frozen=True)
class P2bSize:
    iterations: int
    """Signatures timed per engine and round, in blocks of BLOCK, the engines taking turns."""
    warmup: int
    rounds: int
    """The row gives the median of the rounds' p50s."""


@dataclass(frozen=True)
class Inputs:
    pdf: Path
    png: Path
    p12: Path
    ca_cert: Path


@dataclass
class Figures:
    """Each round's signature times in seconds, and the engine's last output for pdfsig."""

    rounds: list[list[float]] = field(default_factory=list)
    output: Path | None = None

    @property
    def p50(self) -> float:
        return median([percentile(samples, 50) for samples in self.rounds])


WHAT = "Portico's signing step alone (visible stamp + PAdES, in-process) vs Node peer engines"
TARGET = f"≤ {LIBPDF_RATIO:.0f}x @libpdf/core, ahead of @signpdf; peers valid in pdfsig"
BLOCK = 5
"""Signatures per turn: small, so a change in the machine's load falls on every engine alike."""
STOCK = "Portico, stock signer"
"""Portico's step with pyHanko's stock SimpleSigner: what the kept key bought, in the same run."""
ENGINES = ("Portico", STOCK, "libpdf.sign", "libpdf.stamp_and_sign", "signpdf.sign")


async def run(root: Path, size: P2bSize) -> Row:
    missing = await asyncio.to_thread(peers_missing)
    if missing is not None:
        return Row("P2b", WHAT, "not measured", "—", "—", TARGET, None, [f"not measured: {missing}"])
    figures = await asyncio.to_thread(_measure, root / "p2b", size)
    problems = await asyncio.to_thread(_pdfsig_problems, {e: figures[e] for e in ENGINES if e != STOCK})
    return _row(figures, problems, size)


def _measure(folder: Path, size: P2bSize) -> dict[str, Figures]:
    """Every engine signs `iterations` times per round, in turns of BLOCK signatures."""
    inputs = write_inputs(folder)
    kept = pdfsign.load_signer(inputs.p12, None, passphrase=PASSWORD.encode())
    stock = signers.SimpleSigner.load_pkcs12(str(inputs.p12), passphrase=PASSWORD.encode())
    if stock is None:
        raise RuntimeError(f"pyHanko cannot load {inputs.p12}")
    figures = {engine: Figures() for engine in ENGINES}
    with Peer("libpdf", inputs) as libpdf, Peer("signpdf", inputs) as signpdf:
        turns: dict[str, Callable[[int], list[float]]] = {
            "Portico": lambda n: _time_portico(kept, n),
            STOCK: lambda n: _time_portico(stock, n),
            "libpdf.sign": lambda n: libpdf.sign("sign", n),
            "libpdf.stamp_and_sign": lambda n: libpdf.sign("stamp_and_sign", n),
            "signpdf.sign": lambda n: signpdf.sign("sign", n),
        }
        for take_turn in turns.values():
            take_turn(size.warmup)  # JIT, fonts, caches
        for _ in range(size.rounds):
            samples: dict[str, list[float]] = {engine: [] for engine in ENGINES}
            for start in range(0, size.iterations, BLOCK):
                for engine, take_turn in turns.items():
                    samples[engine] += take_turn(min(BLOCK, size.iterations - start))
            for engine in ENGINES:
                figures[engine].rounds.append(samples[engine])
        for engine, peer in (
            ("libpdf.sign", libpdf),
            ("libpdf.stamp_and_sign", libpdf),
            ("signpdf.sign", signpdf),
        ):
            figures[engine].output = peer.save(engine.split(".")[1], folder / f"{engine}.pdf")
    figures["Portico"].output = folder / "portico.pdf"
    figures["Portico"].output.write_bytes(portico_signing_step(kept))
    return figures


# --- the peers ----------------------------------------------------------------------------------------


def peers_missing() -> str | None:
    """Why the Node peers cannot run here, or None once they can (installing them if npm is there)."""
    node = shutil.which("node")
    if node is None:
        return "Node.js is not installed (`make bench-deps` installs Debian's nodejs and npm as root)."
    version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30, check=False)
    major = version.stdout.strip().lstrip("v").split(".")[0]
    if not major.isdigit() or int(major) < MIN_NODE_MAJOR:
        found = version.stdout.strip() or "?"
        return f"Node.js {found} is too old: @libpdf/core needs {MIN_NODE_MAJOR} or later."
    if _installed():
        return None
    npm = shutil.which("npm")
    if npm is None:
        return "npm is not installed, so the pinned peers in bench/node cannot be installed."
    try:
        done = subprocess.run(
            [npm, "ci", "--prefix", str(NODE_DIR), "--no-audit", "--no-fund", "--loglevel=error"],
            capture_output=True,
            text=True,
            timeout=INSTALL_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return f"`npm ci --prefix bench/node` did not finish within {INSTALL_SECONDS} s."
    if done.returncode != 0 or not _installed():
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        return f"`npm ci --prefix bench/node` failed: {' / '.join(tail) or f'exit {done.returncode}'}"
    return None


def _installed() -> bool:
    """Every pinned dependency is in node_modules at the version package.json names."""
    wanted = json.loads((NODE_DIR / "package.json").read_text())["dependencies"]
    for name, version in wanted.items():
        manifest = NODE_DIR / "node_modules" / name / "package.json"
        if not manifest.is_file() or json.loads(manifest.read_text()).get("version") != version:
            return False
    return True


class Peer:
    """One Node.js process running bench/node/sign_<script>.mjs, signing on request (see timing.mjs)."""

    def __init__(self, script: str, inputs: Inputs) -> None:
        self.script = script
        command = [
            shutil.which("node") or "node",
            str(NODE_DIR / f"sign_{script}.mjs"),
            *("--pdf", str(inputs.pdf), "--png", str(inputs.png), "--p12", str(inputs.p12)),
            *("--password", PASSWORD),
        ]
        self.process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=NODE_DIR,
        )
        self._read()  # {"ready": [...]} once the engine and the key are loaded

    def __enter__(self) -> Peer:
        return self

    def __exit__(self, *_: object) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def sign(self, mode: str, count: int) -> list[float]:
        """`count` signatures in a row, each timed alone inside Node, in seconds."""
        answer = self._ask({"op": "sign", "mode": mode, "count": count})
        return [float(sample) / 1000 for sample in answer["samples_ms"]]

    def save(self, mode: str, path: Path) -> Path:
        self._ask({"op": "save", "mode": mode, "path": str(path)})
        return path

    def _ask(self, request: dict[str, object]) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return self._read()

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], PEER_SECONDS)
        line = self.process.stdout.readline() if ready else ""
        if not line:
            self.process.kill()
            _, stderr = self.process.communicate()
            raise RuntimeError(f"the {self.script} peer stopped answering: {stderr.strip()[-2000:]}")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"the {self.script} peer failed: {answer['error']}")
        return answer


# --- Portico's side ---------------------------------------------------------------------------------------


def _time_portico(signer: signers.SimpleSigner, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        portico_signing_step(signer)
        samples.append(time.perf_counter() - started)
    return samples


def write_inputs(folder: Path) -> Inputs:
    """The PDF P2 signs, the drawn signature, and a PKCS#12 bundle of a fresh dev key, certificate and CA
    encrypted as `openssl pkcs12 -export` (OpenSSL 3) writes it: AES-256-CBC, PBKDF2, 2,048 rounds."""
    folder.mkdir(parents=True, exist_ok=True)
    paths, _ = pdfsign.ensure_dev_certificates(folder / "keys")
    key = serialization.load_pem_private_key(paths.signing_key.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TypeError(f"the dev signing key is {type(key).__name__}, not RSA")
    cert = x509.load_pem_x509_certificate(paths.signing_cert.read_bytes())
    ca = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(2048)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(PASSWORD.encode())
    )
    inputs = Inputs(folder / "form.pdf", folder / "signature.png", folder / "signer.p12", paths.ca_cert)
    inputs.p12.write_bytes(pkcs12.serialize_key_and_certificates(b"signer", key, cert, [ca], encryption))
    inputs.pdf.write_bytes(FORM)
    inputs.png.write_bytes(journey.signature_png())
    return inputs


# --- checking the outputs -----------------------------------------------------------------------------


def _pdfsig_problems(outputs: dict[str, Figures]) -> list[str]:
    """pdfsig's objections to each engine's last output: the signature must be valid and cover the file."""
    pdfsig = shutil.which("pdfsig")
    if pdfsig is None:
        return ["pdfsig (poppler-utils) is not installed, so no output was checked"]
    problems = []
    for engine, figures in outputs.items():
        if figures.output is None or not figures.output.is_file():
            problems.append(f"{engine} wrote no output")
            continue
        done = subprocess.run(
            [pdfsig, str(figures.output)], capture_output=True, text=True, timeout=60, check=False
        )
        if "Signature is Valid." not in done.stdout or "Total document signed" not in done.stdout:
            problems.append(f"pdfsig does not accept {engine}'s output: {done.stdout.strip()[-300:]!r}")
    return problems


def _row(figures: dict[str, Figures], problems: list[str], size: P2bSize) -> Row:
    ours, before = figures["Portico"].p50, figures[STOCK].p50
    libpdf, stamped, signpdf = (
        figures[e].p50 for e in ("libpdf.sign", "libpdf.stamp_and_sign", "signpdf.sign")
    )
    ratio = ours / libpdf
    checked = "pdfsig (poppler-utils) is not installed" not in " ".join(problems)
    return Row(
        key="P2b",
        what=WHAT,
        measured=f"p50 {ms(ours)} Portico",
        baseline=f"p50 {ms(libpdf)} @libpdf/core, {ms(signpdf)} @signpdf",
        ratio=f"{ratio:.2f}x @libpdf/core, {ours / signpdf:.2f}x @signpdf",
        target=TARGET,
        passed=(ratio <= LIBPDF_RATIO and ours < signpdf and not problems) if checked else None,
        notes=[
            f"{size.iterations} signatures per engine and round after {size.warmup} of warm-up, the engines "
            f"taking turns {BLOCK} signatures at a time, each timed alone in its own process; median of "
            f"{size.rounds} round(s)' p50. Same one-page PDF, RSA-2048 key and certificate (a PKCS#12 file) "
            "for all. Portico: esign.pdfsign.sign_pdf with the visible stamp and the reserved certificate "
            "page, as the signing activity calls it; with pyHanko's stock SimpleSigner (the key parsed at "
            f"each signature) the same step takes p50 {ms(before)} ({before / libpdf:.2f}x @libpdf/core).",
            "@libpdf/core 0.4.2 (P12Signer loaded once, PDF.sign, ETSI.CAdES.detached) signs invisibly, as "
            "the ratio counts it; with the drawn signature and printed name put on the page first, as "
            f"Documenso draws its fields before it signs: p50 {ms(stamped)} ({ours / stamped:.2f}x). "
            "@signpdf/signpdf 3.3.0 (placeholder-plain, signer-p12 on node-forge) signs invisibly and "
            "decrypts the PKCS#12 bundle at each signature, as built.",
            "pdfsig: "
            + (
                "; ".join(problems)
                if problems
                else "every engine's output is valid and covers the whole file (the certificate's issuer "
                "is a dev CA pdfsig does not trust, as expected)."
            ),
        ],
    )
