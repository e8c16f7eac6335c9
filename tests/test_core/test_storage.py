"""Document storage: one contract, two backends (the data folder and an S3 bucket), and moving between them.

The S3 backend talks to moto's standalone server on 127.0.0.1: boto3 sends it the same HTTP requests it
would send AWS, MinIO or Ceph. What lands in the bucket is read back with a separate client, to show
that Portico never hands the bucket a plaintext byte.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pdfs
import pytest
from journey import (
    TAXPAYER,
    Person,
    invite_token,
    latest,
    login_preparer,
    make_preparer,
    register_and_verify,
    signature_png,
)
from moto.server import ThreadedMotoServer
from pydantic import SecretStr, ValidationError
from sqlmodel import Session, select
from typer.testing import CliRunner

from core.config import Settings
from core.context import Resources
from core.crypto import Cipher, DecryptionError, sha256_hex
from core.enums import Direction, Role
from core.models import Document, Engagement, Preparer, Signature
from core.storage import DocumentNotFound, DocumentStore, FolderBlobs, S3Blobs, open_store
from core.storage_migration import migrate_documents, recorded_digests
from portico import cli

PREFIX = "portico/"
BLOB_OVERHEAD = 1 + 60 + 12 + 16  # version, wrapped data key, nonce, GCM tag


# ---- the S3 server and the two backends ------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def bucket_client(endpoint: str) -> Any:
    """A plain boto3 client, independent of Portico's: how an operator (or an attacker) sees the bucket."""
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def bucket(s3_endpoint: str) -> str:
    name = f"portico-{uuid.uuid4().hex[:12]}"
    bucket_client(s3_endpoint).create_bucket(Bucket=name)
    return name


def use_s3(settings: Settings, endpoint: str, bucket: str, *, storage: str = "s3") -> Settings:
    settings.storage = storage  # type: ignore[assignment]
    settings.storage_bucket = bucket
    settings.storage_prefix = PREFIX
    settings.storage_endpoint_url = endpoint
    settings.storage_region = "us-east-1"
    settings.storage_access_key_id = "testing"
    settings.storage_secret_access_key = SecretStr("testing")
    return settings


@pytest.fixture
def cipher() -> Cipher:
    return Cipher(secrets.token_bytes(32))


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, settings: Settings, cipher: Cipher) -> DocumentStore:
    if request.param == "s3":
        endpoint = request.getfixturevalue("s3_endpoint")
        use_s3(settings, endpoint, request.getfixturevalue("bucket"))
    return open_store(settings, cipher)


def raw_objects(store: DocumentStore) -> dict[str, bytes]:
    """Everything the backend holds, read around Portico: files in the folder, objects in the bucket."""
    if isinstance(store.blobs, FolderBlobs):
        root = store.blobs.root
        return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    assert isinstance(store.blobs, S3Blobs)
    client = bucket_client(store.blobs.client.meta.endpoint_url)
    listed = client.list_objects_v2(Bucket=store.blobs.bucket).get("Contents", [])
    return {
        o["Key"]: client.get_object(Bucket=store.blobs.bucket, Key=o["Key"])["Body"].read() for o in listed
    }


def write_raw(store: DocumentStore, key: str, data: bytes) -> None:
    """Puts bytes under a key around Portico's encryption (tampering, a copy from elsewhere)."""
    store.blobs.write(key, data)


# ---- the contract both backends keep -----------------------------------------------------------------


def test_document_is_stored_encrypted_and_round_trips(store: DocumentStore) -> None:
    pdf = pdfs.make_pdf(pages=2, title="Form 8879 for Shelby Jones")
    key = store.new_key("upload")
    store.put(key, pdf)
    ((where, raw),) = raw_objects(store).items()
    assert b"%PDF" not in raw and b"Shelby Jones" not in raw and pdf[100:164] not in raw
    assert raw[0] == 1 and len(raw) == len(pdf) + BLOB_OVERHEAD  # a sealed blob, nothing more
    if isinstance(store.blobs, S3Blobs):
        assert where == f"{PREFIX}{key}"
    assert store.exists(key)
    assert store.get(key) == pdf


def test_missing_key_raises_document_not_found(store: DocumentStore) -> None:
    key = store.new_key("upload")
    with pytest.raises(DocumentNotFound):
        store.get(key)
    assert not store.exists(key)
    store.delete(key)  # nothing to delete: no error


@pytest.mark.parametrize("key", ["../../etc/passwd", "upload/../../x", "upload/" + "A" * 32, "upload"])
def test_unsafe_keys_are_refused_and_write_nothing(store: DocumentStore, key: str) -> None:
    with pytest.raises(DocumentNotFound):
        store.put(key, b"secret")
    with pytest.raises(DocumentNotFound):
        store.get(key)
    assert not store.exists(key)
    store.delete(key)
    assert raw_objects(store) == {}


def test_overwrite_replaces_the_blob(store: DocumentStore) -> None:
    key = store.new_key("signed")
    store.put(key, b"first version")
    store.put(key, b"second version")
    assert store.get(key) == b"second version"
    assert len(raw_objects(store)) == 1


def test_deleted_document_is_gone(store: DocumentStore) -> None:
    key, kept = store.new_key("upload"), store.new_key("upload")
    store.put(key, b"data")
    store.put(kept, b"other")
    store.delete(key)
    assert not store.exists(key)
    with pytest.raises(DocumentNotFound):
        store.get(key)
    store.delete(key)  # twice is fine
    assert store.get(kept) == b"other"
    assert list(store.all_keys()) == [kept]


def test_large_blob_round_trips(store: DocumentStore) -> None:
    data = os.urandom(12 * 1024 * 1024 + 7)  # about half of the largest upload Portico accepts
    key = store.new_key("upload")
    store.put(key, data)
    ((_, raw),) = raw_objects(store).items()
    assert len(raw) == len(data) + BLOB_OVERHEAD and data[:4096] not in raw
    assert store.get(key) == data


def test_each_blob_has_its_own_data_key(store: DocumentStore) -> None:
    pdf = pdfs.make_pdf()
    store.put(store.new_key("upload"), pdf)
    store.put(store.new_key("upload"), pdf)
    assert len(set(raw_objects(store).values())) == 2


def test_blob_moved_under_another_key_is_refused(store: DocumentStore) -> None:
    """Swapping one client's stored return for another's is detected wherever the blobs live."""
    original, other = store.new_key("upload"), store.new_key("upload")
    store.put(original, pdfs.make_pdf(title="Return of Shelby Jones"))
    write_raw(store, other, store.blobs.read(original))
    with pytest.raises(DecryptionError):
        store.get(other)


def test_tampered_blob_is_refused(store: DocumentStore) -> None:
    key = store.new_key("upload")
    store.put(key, pdfs.make_pdf())
    raw = bytearray(store.blobs.read(key))
    raw[-1] ^= 1
    write_raw(store, key, bytes(raw))
    with pytest.raises(DecryptionError):
        store.get(key)


def test_another_master_key_cannot_open_the_documents(store: DocumentStore) -> None:
    key = store.new_key("upload")
    store.put(key, b"return")
    thief = DocumentStore(store.blobs, Cipher(secrets.token_bytes(32)))
    with pytest.raises(DecryptionError):
        thief.get(key)


def test_all_keys_lists_what_was_stored(store: DocumentStore) -> None:
    keys = {store.new_key(prefix) for prefix in ("upload", "signed", "signature", "sealed")}
    for key in keys:
        store.put(key, key.encode())
    assert set(store.all_keys()) == keys


# ---- S3 specifics --------------------------------------------------------------------------------


def record_requests(store: DocumentStore) -> list[Any]:
    assert isinstance(store.blobs, S3Blobs)
    sent: list[Any] = []
    store.blobs.client.meta.events.register("before-send.s3", lambda request, **_: sent.append(request))
    return sent


@pytest.fixture
def s3_store(settings: Settings, s3_endpoint: str, bucket: str, cipher: Cipher) -> DocumentStore:
    return open_store(use_s3(settings, s3_endpoint, bucket), cipher)


def test_a_write_is_one_put_of_the_whole_sealed_blob(s3_store: DocumentStore) -> None:
    """One PutObject to the real key, with Content-MD5: S3 stores all of it or none of it."""
    sent = record_requests(s3_store)
    key = s3_store.new_key("upload")
    s3_store.put(key, b"x" * 100_000)
    (request,) = sent
    assert request.method == "PUT" and request.url.endswith(f"/{PREFIX}{key}")
    assert int(request.headers["Content-Length"]) == 100_000 + BLOB_OVERHEAD
    assert request.headers["Content-MD5"]
    assert b"x" * 64 not in request.body  # sealed before it left the process


def test_a_failed_upload_leaves_the_previous_version(s3_store: DocumentStore) -> None:
    key = s3_store.new_key("signed")
    s3_store.put(key, b"signed by the taxpayer")
    assert isinstance(s3_store.blobs, S3Blobs)

    def cut(**_: Any) -> None:
        raise RuntimeError("connection lost mid-upload")

    s3_store.blobs.client.meta.events.register_first("before-send.s3.PutObject", cut)
    with pytest.raises(RuntimeError, match="connection lost"):
        s3_store.put(key, b"signed by both")
    s3_store.blobs.client.meta.events.unregister("before-send.s3.PutObject", cut)
    assert s3_store.get(key) == b"signed by the taxpayer"


def test_sse_kms_key_is_requested_when_configured(
    settings: Settings, s3_endpoint: str, bucket: str, cipher: Cipher
) -> None:
    settings = use_s3(settings, s3_endpoint, bucket)
    settings.storage_kms_key_id = "alias/portico-documents"
    store = open_store(settings, cipher)
    key = store.new_key("upload")
    store.put(key, b"return")
    head = bucket_client(s3_endpoint).head_object(Bucket=bucket, Key=f"{PREFIX}{key}")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["SSEKMSKeyId"].endswith("alias/portico-documents")
    assert store.get(key) == b"return"  # and Portico's own encryption is still there underneath


def test_a_missing_bucket_is_an_error_not_a_missing_document(
    settings: Settings, s3_endpoint: str, cipher: Cipher
) -> None:
    store = open_store(use_s3(settings, s3_endpoint, "no-such-bucket-here"), cipher)
    with pytest.raises(Exception, match="NoSuchBucket") as raised:
        store.get(store.new_key("upload"))
    assert not isinstance(raised.value, DocumentNotFound)


PRODUCTION: dict[str, Any] = {
    "environment": "production",
    "public_url": "https://portal.example-cpa.com",
    "email_backend": "smtp",
    "smtp_host": "smtp.example.com",
    "sms_backend": "twilio",
    "twilio_account_sid": "AC" + "0" * 32,
    "twilio_auth_token": "token",
    "twilio_from_number": "+15005550006",
}


def production(tmp_path: Path, master_key: str, **values: Any) -> Settings:
    values = {**PRODUCTION, "data_dir": tmp_path, "encryption_key": master_key, **values}
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def test_production_s3_needs_a_bucket(tmp_path: Path, master_key: str) -> None:
    with pytest.raises(ValidationError, match="PORTICO_STORAGE_BUCKET"):
        production(tmp_path, master_key, storage="s3")
    chosen = production(tmp_path, master_key, storage="s3", storage_bucket="firm-docs", storage_prefix="/p/")
    assert chosen.storage_prefix == "p/"
    assert production(tmp_path, master_key).storage == "local"  # the default
    with pytest.raises(ValidationError, match="http"):
        production(tmp_path, master_key, storage="s3", storage_bucket="b", storage_endpoint_url="minio:9000")


# ---- portico storage migrate --to s3 ---------------------------------------------------------------


def add_documents(resources: Resources, count: int) -> dict[str, bytes]:
    """Documents as Portico records them (each with its SHA-256), plus an unrecorded signature image."""
    make_preparer(resources)
    store = resources.store
    blobs: dict[str, bytes] = {}
    with Session(resources.engine) as db:
        preparer = db.exec(select(Preparer)).one()
        engagement = Engagement(firm_id=preparer.firm_id, preparer_id=preparer.id or 0, tax_year=2025)
        db.add(engagement)
        db.flush()
        for n in range(count):
            pdf = pdfs.make_pdf(title=f"Return {n} of Shelby Jones")
            key = store.new_key("upload")
            store.put(key, pdf)
            blobs[key] = pdf
            current, digest = key, sha256_hex(pdf)
            if n == 0:  # a signed version beside the original
                current, signed = store.new_key("signed"), pdf + b"%signed"
                store.put(current, signed)
                blobs[current], digest = signed, sha256_hex(signed)
            doc = Document(
                engagement_id=engagement.id or 0,
                direction=Direction.TO_CLIENT,
                upload_ref=f"ref-{n}",
                name=f"Return {n}.pdf",
                content_type="application/pdf",
                size=len(pdf),
                storage_key=key,
                sha256=sha256_hex(pdf),
                current_key=current,
                current_sha256=digest,
                uploaded_by="preparer:1",
            )
            db.add(doc)
            if n == 0:
                db.flush()
                db.add(
                    Signature(
                        document_id=doc.id or 0, role=Role.TAXPAYER, sha256_after=digest, version_key=current
                    )
                )
        db.commit()
    image = store.new_key("signature")
    store.put(image, b"\x89PNG signature image")
    blobs[image] = b"\x89PNG signature image"
    return blobs


def run_migrate(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Any:
    monkeypatch.setattr(cli, "get_settings", lambda: settings)
    return CliRunner().invoke(cli.app, ["storage", "migrate", "--to", "s3"])


def interrupt_after(monkeypatch: pytest.MonkeyPatch, writes: int) -> None:
    """The machine goes away after `writes` uploads (the next PutObject never completes)."""
    real: Callable[[S3Blobs, str, bytes], None] = S3Blobs.write
    done = [0]

    def write(self: S3Blobs, key: str, sealed: bytes) -> None:
        if done[0] == writes:
            raise ConnectionError("the network went away")
        done[0] += 1
        real(self, key, sealed)

    monkeypatch.setattr(S3Blobs, "write", write)


def test_migrate_copies_verifies_and_resumes(
    settings: Settings, s3_endpoint: str, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_s3(settings, s3_endpoint, bucket, storage="local")  # the bucket is configured, not yet in use
    resources = Resources.from_settings(settings)
    blobs = add_documents(resources, 4)  # 4 originals, 1 signed version, 1 signature image
    assert len(recorded_digests(resources.engine)) == 5

    with monkeypatch.context() as interrupted:
        interrupt_after(interrupted, 2)
        first = run_migrate(interrupted, settings)
    assert isinstance(first.exception, ConnectionError)
    assert len(raw_objects(open_store(use_s3(settings, s3_endpoint, bucket), resources.cipher))) == 2

    settings.storage = "local"
    again = run_migrate(monkeypatch, settings)
    assert again.exit_code == 0, again.output
    assert "4 copied, 2 already there and verified, 0 failed; 5 checked against the SHA-256" in again.output
    assert "Set PORTICO_STORAGE=s3" in again.output

    once_more = run_migrate(monkeypatch, settings)
    assert "0 copied, 6 already there and verified, 0 failed" in once_more.output, once_more.output

    settings.storage = "s3"
    s3 = open_store(settings, resources.cipher)
    assert {key: s3.get(key) for key in blobs} == blobs
    for raw in raw_objects(s3).values():
        assert b"%PDF" not in raw and b"Shelby Jones" not in raw and b"PNG" not in raw


def test_migrate_replaces_a_damaged_copy_and_refuses_a_bad_source(
    settings: Settings, s3_endpoint: str, bucket: str, cipher: Cipher, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_s3(settings, s3_endpoint, bucket, storage="local")
    resources = Resources.from_settings(settings)
    blobs = add_documents(resources, 2)
    local = open_store(settings, resources.cipher, "local")
    s3 = open_store(settings, resources.cipher, "s3")
    damaged, altered = list(blobs)[:2]
    s3.blobs.write(damaged, b"\x01" + b"\x00" * 200)  # an object that is not the blob
    report = migrate_documents(local, s3, recorded_digests(resources.engine))
    assert (report.copied, report.already, report.failed) == (len(blobs), 0, [])
    assert s3.get(damaged) == blobs[damaged]

    # A local blob that no longer matches the digest the database recorded is reported, not copied.
    local.put(altered, b"not what was signed")
    result = run_migrate(monkeypatch, settings)
    assert result.exit_code == 1
    assert f"FAILED {altered}: the source copy does not match the SHA-256 recorded" in result.output
    assert s3.get(altered) == blobs[altered]  # the good copy in the bucket is left alone


def test_migrate_needs_a_bucket(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_migrate(monkeypatch, settings)
    assert result.exit_code == 2 and "PORTICO_STORAGE_BUCKET" in result.output
    wrong = CliRunner().invoke(cli.app, ["storage", "migrate", "--to", "gcs"])
    assert wrong.exit_code == 2


def test_migrate_with_missing_blob_reports_it(
    settings: Settings, s3_endpoint: str, bucket: str, cipher: Cipher
) -> None:
    use_s3(settings, s3_endpoint, bucket, storage="local")
    resources = Resources.from_settings(settings)
    blobs = add_documents(resources, 1)
    lost = next(iter(blobs))
    local = open_store(settings, resources.cipher, "local")
    local.delete(lost)
    report = migrate_documents(
        local, open_store(settings, resources.cipher, "s3"), recorded_digests(resources.engine)
    )
    assert report.missing == [lost] and not report.ok


# ---- the whole journey with documents in the bucket ---------------------------------------------------


@pytest.fixture
def s3_settings(settings: Settings, s3_endpoint: str, bucket: str) -> Settings:
    """Requested before `api`: the app and the worker are built from these settings."""
    return use_s3(settings, s3_endpoint, bucket)


@pytest.fixture
async def worker(s3_settings: Settings, dev_server: Any) -> Any:
    from worker.main import build_worker

    resources = Resources.from_settings(s3_settings)
    async with build_worker(dev_server.client, resources):
        yield resources


@pytest.mark.e2e
async def test_journey_with_documents_in_the_bucket(s3_settings: Settings, api: Any, worker: Any) -> None:
    assert isinstance(api.app.state.resources.store.blobs, S3Blobs)
    email = make_preparer(worker)
    original = pdfs.make_pdf(1, "Form 8879")
    async with api.client() as preparer, api.client("203.0.113.9") as browser:
        await login_preparer(preparer, email)
        created = await preparer.post("/api/engagements", json={"tax_year": 2025, "taxpayer": TAXPAYER})
        eid = created.json()["id"]
        await preparer.post(f"/api/engagements/{eid}/invite", json={"role": "taxpayer", "channel": "email"})
        token = await _invitation(preparer)
        await register_and_verify(Person(browser, TAXPAYER), token, preparer)
        await _wait_for(preparer, eid, "verified")
        sent = await preparer.post(
            f"/api/engagements/{eid}/documents",
            files=[("files", ("Form 8879.pdf", original, "application/pdf"))],
            data={"signers": ["taxpayer"]},
        )
        assert sent.status_code == 200, sent.text
        doc_id = sent.json()["documents"][0]["id"]
        png = signature_png()
        saved = await browser.put("/api/taxpayer/signature", files={"image": ("s.png", png, "image/png")})
        assert saved.status_code == 200, saved.text
        signed = await browser.post(f"/api/taxpayer/documents/{doc_id}/sign")
        assert signed.status_code == 200, signed.text
        await _wait_for(preparer, eid, "completed")

        url = f"/api/engagements/{eid}/documents/{doc_id}/download"
        as_sent = await preparer.get(url, params={"original": "true"})
        final = await preparer.get(url)
    assert as_sent.status_code == 200 and as_sent.content == original
    assert final.status_code == 200 and final.content.startswith(b"%PDF") and final.content != original

    stored = raw_objects(api.app.state.resources.store)
    prefixes = {key.removeprefix(PREFIX).split("/")[0] for key in stored}
    assert prefixes == {"sent", "signatures", "signed", "certificates", "sealed"}, stored.keys()
    for raw in stored.values():
        assert (
            b"%PDF" not in raw and b"Form 8879" not in raw and b"PNG" not in raw and original[:200] not in raw
        )
    local = s3_settings.data_dir / "documents"
    assert not local.exists() or not [p for p in local.rglob("*") if p.is_file()]


async def _invitation(preparer: Any) -> str:
    for _ in range(100):
        try:
            return invite_token(await latest(preparer, "invite", TAXPAYER["email"]))
        except AssertionError:
            await asyncio.sleep(0.1)
    raise AssertionError("no invitation was sent")


async def _wait_for(http: Any, engagement_id: int, stage: str) -> None:
    for _ in range(300):
        body = (await http.get(f"/api/engagements/{engagement_id}")).json()
        if body["status"]["stage"] == stage:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"engagement stayed at {body['status']['stage']}, expected {stage}")
