"""Tests for core/: encryption at rest, document storage, contact data, passwords and invite tokens."""

from __future__ import annotations

import base64
import os
import secrets
import stat
from importlib import resources
from pathlib import Path

import pdfs
import pytest
from pydantic import ValidationError

from core import storage as storage_module
from core.config import Settings
from core.crypto import Cipher, DecryptionError
from core.dev_secrets import DEV_KEY_FILE
from core.identity import (
    InvalidContact,
    contact_digest,
    identity_digest,
    mask_email,
    mask_phone,
    normalise_email,
    normalise_name,
    normalise_phone,
    normalise_ssn,
)
from core.passwords import hash_password, password_problems, verify_password
from core.storage import DocumentNotFound, DocumentStore
from core.tokens import InvalidToken, InvitePayload, make_invite_token, read_invite_token

TOO_COMMON = "This password is too common; choose another."


@pytest.fixture
def cipher() -> Cipher:
    return Cipher(secrets.token_bytes(32))


@pytest.fixture
def store(tmp_path: Path, cipher: Cipher) -> DocumentStore:
    return DocumentStore(tmp_path / "documents", cipher)


def blob_files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


# --- small values: SSNs, message bodies ----------------------------------------------------------------


def test_encrypted_value_round_trips_and_hides_the_plaintext(cipher: Cipher) -> None:
    token = cipher.encrypt_text("123456789", "ssn")
    assert b"123456789" not in token
    assert b"6789" not in token
    assert cipher.decrypt_text(token, "ssn") == "123456789"


def test_same_value_encrypts_differently_each_time(cipher: Cipher) -> None:
    # A fixed nonce would let anyone spot two engagements with the same SSN.
    assert cipher.encrypt_text("123456789", "ssn") != cipher.encrypt_text("123456789", "ssn")


@pytest.mark.parametrize("at", [0, 11, 12, 20, -1], ids=["nonce", "nonce-end", "body", "body-mid", "tag"])
def test_tampered_ciphertext_is_refused(cipher: Cipher, at: int) -> None:
    token = cipher.encrypt_text("123456789", "ssn")
    with pytest.raises(DecryptionError):
        cipher.decrypt(flip(token, at % len(token)), "ssn")


@pytest.mark.parametrize("token", [b"", b"short", bytes(27)], ids=["empty", "short", "zeros"])
def test_truncated_or_garbage_ciphertext_is_refused(cipher: Cipher, token: bytes) -> None:
    with pytest.raises(DecryptionError):
        cipher.decrypt(token, "ssn")


def test_ciphertext_is_bound_to_its_purpose(cipher: Cipher) -> None:
    """An SSN copied into another column (e.g. a message body) must not decrypt there."""
    token = cipher.encrypt_text("123456789", "ssn")
    with pytest.raises(DecryptionError):
        cipher.decrypt_text(token, "outbox")


def test_another_master_key_cannot_decrypt(cipher: Cipher) -> None:
    token = cipher.encrypt_text("123456789", "ssn")
    with pytest.raises(DecryptionError):
        Cipher(secrets.token_bytes(32)).decrypt_text(token, "ssn")


@pytest.mark.parametrize("size", [0, 16, 31, 33, 64])
def test_master_key_must_be_32_bytes(size: int) -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        Cipher(bytes(size))


def test_digest_is_keyed_stable_and_purpose_bound(cipher: Cipher) -> None:
    digest = cipher.digest("ssn-last4", "6789")
    assert digest == cipher.digest("ssn-last4", "6789")
    assert "6789" not in digest
    assert digest != cipher.digest("identity", "6789")
    assert digest != Cipher(secrets.token_bytes(32)).digest("ssn-last4", "6789")


def test_derived_keys_are_distinct_per_purpose(cipher: Cipher) -> None:
    invite = cipher.derive_key("invite-token")
    assert len(invite) == 32
    assert invite == cipher.derive_key("invite-token")
    assert invite != cipher.derive_key("temporal-payloads")


# --- the master key from settings -------------------------------------------------------------------


def test_development_key_is_generated_once_privately_and_reused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PORTICO_ENCRYPTION_KEY", raising=False)
    first = Settings(environment="development", data_dir=tmp_path, _env_file=None)  # type: ignore[call-arg]
    key = first.master_key()
    assert len(key) == 32
    key_file = tmp_path / DEV_KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # A restart (a new Settings on the same folder) must read back the same key, or every SSN is lost.
    again = Settings(environment="development", data_dir=tmp_path, _env_file=None)  # type: ignore[call-arg]
    assert again.master_key() == key


def test_production_refuses_a_missing_or_development_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PORTICO_ENCRYPTION_KEY", raising=False)
    with pytest.raises(ValidationError, match="ENCRYPTION_KEY is required"):
        Settings(environment="production", data_dir=tmp_path, _env_file=None)  # type: ignore[call-arg]
    Settings(environment="development", data_dir=tmp_path, _env_file=None).master_key()  # type: ignore[call-arg]
    dev_key = (tmp_path / DEV_KEY_FILE).read_text().strip()
    with pytest.raises(ValidationError, match="development key"):
        Settings(
            environment="production",
            data_dir=tmp_path,
            encryption_key=dev_key,
            _env_file=None,  # type: ignore[call-arg]
        )


def test_item9_environment_defaults_to_production(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Security round two, item 9: `portico api` without PORTICO_ENVIRONMENT must not mount the dev outbox."""
    for name in [n for n in os.environ if n.upper().startswith("PORTICO_")]:
        monkeypatch.delenv(name)
    with pytest.raises(ValidationError, match="ENCRYPTION_KEY is required in production"):
        Settings(data_dir=tmp_path, _env_file=None)  # type: ignore[call-arg]
    assert Settings.model_fields["environment"].default == "production"


@pytest.mark.parametrize(
    ("backends", "named"),
    [
        ({"email_backend": "smtp", "smtp_host": "mail.example"}, "PORTICO_EMAIL_BACKEND=smtp"),
        ({"email_backend": "sendgrid"}, "PORTICO_EMAIL_BACKEND=sendgrid"),
        ({"sms_backend": "twilio"}, "PORTICO_SMS_BACKEND=twilio"),
    ],
)
def test_item9_development_refuses_real_email_and_sms_backends(
    tmp_path: Path, backends: dict[str, str], named: str
) -> None:
    with pytest.raises(ValidationError, match=f"{named} sends real messages, which development refuses"):
        Settings(environment="development", data_dir=tmp_path, _env_file=None, **backends)  # type: ignore[call-arg]
    # Tests keep using the fake providers behind the real backends.
    Settings(environment="test", data_dir=tmp_path, _env_file=None, **backends)  # type: ignore[call-arg]


def test_item9_make_run_and_portico_up_ask_for_development(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from portico import cli

    makefile = (Path(__file__).resolve().parents[2] / "Makefile").read_text()
    assert "\tPORTICO_ENVIRONMENT=development $(VENV)/bin/portico up" in makefile
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.delenv("PORTICO_ENVIRONMENT", raising=False)
    cli._ask_for_development()
    assert os.environ["PORTICO_ENVIRONMENT"] == "development"  # inherited by the worker and API it starts
    # Said explicitly, in the environment or in .env: `up` leaves it alone (and then refuses production).
    monkeypatch.setenv("PORTICO_ENVIRONMENT", "production")
    cli._ask_for_development()
    assert os.environ["PORTICO_ENVIRONMENT"] == "production"
    monkeypatch.delenv("PORTICO_ENVIRONMENT")
    (tmp_path / ".env").write_text("PORTICO_ENVIRONMENT=production\n")
    cli._ask_for_development()
    assert "PORTICO_ENVIRONMENT" not in os.environ


@pytest.mark.parametrize("key", ["too-short", base64.urlsafe_b64encode(bytes(16)).decode()])
def test_configured_key_of_the_wrong_size_is_refused(tmp_path: Path, key: str) -> None:
    settings = Settings(environment="test", data_dir=tmp_path, encryption_key=key, _env_file=None)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="32 bytes"):
        settings.master_key()


# --- document storage ----------------------------------------------------------------------------------


def test_document_is_stored_encrypted_and_round_trips(store: DocumentStore) -> None:
    pdf = pdfs.make_pdf(pages=2, title="Form 8879 for Shelby Jones")
    key = store.new_key("upload")
    store.put(key, pdf)
    (blob,) = blob_files(store.root)
    raw = blob.read_bytes()
    assert b"%PDF" not in raw
    assert b"Shelby Jones" not in raw
    assert pdf[100:164] not in raw
    assert store.exists(key)
    assert store.get(key) == pdf


def test_each_blob_has_its_own_data_key(store: DocumentStore) -> None:
    pdf = pdfs.make_pdf()
    first, second = store.new_key("upload"), store.new_key("upload")
    store.put(first, pdf)
    store.put(second, pdf)
    raw = {path.read_bytes() for path in blob_files(store.root)}
    assert len(raw) == 2


def test_new_keys_are_random_and_usable(store: DocumentStore) -> None:
    keys = {store.new_key("signed") for _ in range(50)}
    assert len(keys) == 50
    for key in list(keys)[:3]:
        store.put(key, b"x")
        assert store.get(key) == b"x"


@pytest.mark.parametrize(
    "where",
    [0, 1, 30, 1 + 60, 1 + 60 + 12, -1],
    ids=["version", "wrapped-key", "wrapped-key-tag", "nonce", "body", "body-tag"],
)
def test_tampered_blob_is_refused(store: DocumentStore, where: int) -> None:
    key = store.new_key("upload")
    store.put(key, pdfs.make_pdf())
    (blob,) = blob_files(store.root)
    raw = blob.read_bytes()
    blob.write_bytes(flip(raw, where % len(raw)))
    with pytest.raises(DecryptionError):
        store.get(key)


def test_truncated_blob_is_refused(store: DocumentStore) -> None:
    key = store.new_key("upload")
    store.put(key, pdfs.make_pdf())
    (blob,) = blob_files(store.root)
    blob.write_bytes(blob.read_bytes()[:-100])
    with pytest.raises(DecryptionError):
        store.get(key)


def test_blob_moved_under_another_key_is_refused(store: DocumentStore) -> None:
    """Swapping one client's stored return for another's must be detected, not served."""
    original, other = store.new_key("upload"), store.new_key("upload")
    store.put(original, pdfs.make_pdf(title="Return of Shelby Jones"))
    store.put(other, pdfs.make_pdf(title="Return of Sam Smith"))
    original_path = store.blobs.path(original)
    store.blobs.path(other).write_bytes(original_path.read_bytes())
    with pytest.raises(DecryptionError):
        store.get(other)


def test_another_master_key_cannot_open_stored_documents(tmp_path: Path, store: DocumentStore) -> None:
    key = store.new_key("upload")
    store.put(key, pdfs.make_pdf())
    thief = DocumentStore(store.root, Cipher(secrets.token_bytes(32)))
    with pytest.raises(DecryptionError):
        thief.get(key)


@pytest.mark.parametrize(
    "key",
    [
        "../x",
        "../" + "a" * 32,
        "upload/../../" + "a" * 22,
        "/etc/passwd",
        "/" + "a" * 32,
        "upload/" + "a" * 31,
        "upload/" + "a" * 33,
        "upload/" + "A" * 32,
        "upload/" + "g" * 32,
        "upload",
        "",
        "up-load/" + "a" * 32,
        "upload/aa/" + "a" * 29,
    ],
)
def test_unsafe_storage_keys_are_refused(tmp_path: Path, store: DocumentStore, key: str) -> None:
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(DocumentNotFound):
        store.put(key, b"secret")
    with pytest.raises(DocumentNotFound):
        store.get(key)
    assert not store.exists(key)
    store.delete(key)  # harmless: nothing to delete, nothing outside the store touched
    assert sorted(tmp_path.rglob("*")) == before


def test_missing_document_raises_not_found(store: DocumentStore) -> None:
    with pytest.raises(DocumentNotFound):
        store.get(store.new_key("upload"))


def test_deleted_document_is_gone(store: DocumentStore) -> None:
    key = store.new_key("upload")
    store.put(key, b"data")
    store.delete(key)
    assert not store.exists(key)
    with pytest.raises(DocumentNotFound):
        store.get(key)
    store.delete(key)  # deleting twice is fine


def test_crash_before_rename_leaves_no_blob_under_the_real_name(
    store: DocumentStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = store.new_key("upload")
    renames: list[tuple[str, str]] = []

    def crash(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        renames.append((os.fspath(src), os.fspath(dst)))
        raise OSError("power failure")

    monkeypatch.setattr(storage_module.os, "replace", crash)
    with pytest.raises(OSError, match="power failure"):
        store.put(key, pdfs.make_pdf())
    ((written, final),) = renames
    assert written != final
    assert Path(written).exists()  # the whole blob went to the temporary name ...
    assert not Path(final).exists()  # ... and nothing under the real one
    assert not store.exists(key)
    with pytest.raises(DocumentNotFound):
        store.get(key)


def test_crash_mid_write_leaves_no_blob_under_the_real_name(
    store: DocumentStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = store.new_key("upload")

    def disk_full(fd: int) -> None:  # the write was buffered; flushing it to disk fails
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="disk full"):
        store.put(key, pdfs.make_pdf())
    monkeypatch.undo()
    assert not store.exists(key)
    # The next attempt (a retried activity) writes the whole blob.
    store.put(key, b"complete")
    assert store.get(key) == b"complete"


# --- contact data and identity -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    ["(702) 555-0197", "702-555-0197", "702.555.0197", "+1 702 555 0197", "1 (702) 555-0197", " 7025550197 "],
)
def test_phone_numbers_normalise_to_e164(raw: str) -> None:
    assert normalise_phone(raw) == "+17025550197"


def test_international_phone_number_keeps_its_country() -> None:
    assert normalise_phone("+44 20 7946 0958") == "+442079460958"


@pytest.mark.parametrize("raw", ["", "hello", "555-0197", "123", "+1 000 000 0000"])
def test_invalid_phone_numbers_are_refused(raw: str) -> None:
    with pytest.raises(InvalidContact):
        normalise_phone(raw)


@pytest.mark.parametrize(
    "raw", ["shelby.jones@example.com", " Shelby.Jones@Example.COM ", "SHELBY.JONES@EXAMPLE.COM"]
)
def test_email_addresses_normalise(raw: str) -> None:
    assert normalise_email(raw) == "shelby.jones@example.com"


@pytest.mark.parametrize("raw", ["", "shelby", "shelby@", "@example.com", "shelby@@example.com", "a b@c.com"])
def test_invalid_email_addresses_are_refused(raw: str) -> None:
    with pytest.raises(InvalidContact):
        normalise_email(raw)


@pytest.mark.parametrize("typed", ["O'Neil ", "oneil", "O NEIL", "o'neil", "  O\u2019Neil", "O-Neil"])
def test_names_match_whatever_the_case_spacing_and_punctuation(typed: str) -> None:
    assert normalise_name(typed) == normalise_name("O'Neil") == "oneil"


def test_names_match_without_accents() -> None:
    assert normalise_name("Núñez") == normalise_name("Nunez")
    assert normalise_name("Müller") == normalise_name("muller")


def test_different_names_stay_different() -> None:
    assert normalise_name("Jones") != normalise_name("Johns")


@pytest.mark.parametrize(("one", "other"), [("Иванов", "Петров"), ("Παππάς", "Νικολάου"), ("李", "王")])
def test_non_latin_last_names_are_not_all_equal(one: str, other: str) -> None:
    assert normalise_name(one) != normalise_name(other)


def test_sharp_s_matches_double_s() -> None:
    assert normalise_name("Strauß") == normalise_name("Strauss")


def test_identity_digest_ignores_how_the_name_was_typed() -> None:
    cipher = Cipher(secrets.token_bytes(32))
    assert identity_digest(cipher, "O'Neil ", "6789") == identity_digest(cipher, "oneil", " 6789")
    assert identity_digest(cipher, "O'Neil", "6789") != identity_digest(cipher, "O'Neil", "6788")
    assert identity_digest(cipher, "O'Neil", "6789") != identity_digest(cipher, "O'Neal", "6789")


def test_contact_digest_ignores_formatting() -> None:
    cipher = Cipher(secrets.token_bytes(32))
    assert contact_digest(cipher, "sms", "(702) 555-0197") == contact_digest(cipher, "sms", "+17025550197")
    assert contact_digest(cipher, "email", " Shelby@Example.com") == contact_digest(
        cipher, "email", "shelby@example.com"
    )
    assert contact_digest(cipher, "sms", "(702) 555-0197") != contact_digest(cipher, "sms", "(702) 555-0198")


@pytest.mark.parametrize("raw", ["123-45-6789", "123456789", "123 45 6789", " 123-45-6789 "])
def test_valid_ssns_normalise_to_nine_digits(raw: str) -> None:
    assert normalise_ssn(raw) == "123456789"


@pytest.mark.parametrize(
    "raw",
    [
        "000-12-3456",  # area 000 is never issued
        "666-12-3456",  # nor 666
        "900-12-3456",  # 9xx are ITINs / never SSNs
        "987-65-4321",
        "123-00-4567",  # group 00
        "123-45-0000",  # serial 0000
        "123-45-678",  # too short
        "123-45-67890",  # too long
        "",
        "abc-de-fghi",
    ],
)
def test_invalid_ssns_are_refused(raw: str) -> None:
    with pytest.raises(InvalidContact):
        normalise_ssn(raw)


@pytest.mark.parametrize(
    ("email", "masked"),
    [
        ("shelby.jones@gmail.com", "she*****com"),
        ("shelby@example.com", "she*****com"),
        ("pat.doe@firm.org", "pat*****org"),
    ],
)
def test_email_is_masked_like_the_seed_product(email: str, masked: str) -> None:
    assert mask_email(email) == masked


def test_short_email_is_fully_masked() -> None:
    assert mask_email("a@b.co") == "*****"


@pytest.mark.parametrize("phone", ["+17025550197", "+1 702 555 0197", "(702) 555-0197"])
def test_phone_is_masked_like_the_seed_product(phone: str) -> None:
    assert mask_phone(phone) == "70*****97"


def test_international_phone_mask_shows_the_national_number() -> None:
    assert mask_phone("+442079460958") == "20*****58"


# --- passwords -----------------------------------------------------------------------------------------


def common_password_list() -> list[str]:
    text = resources.files("core").joinpath("common_passwords.txt").read_text()
    return [line.strip() for line in text.splitlines() if line.strip()]


def test_common_password_list_ships_with_its_licence() -> None:
    entries = common_password_list()
    assert len(set(entries)) >= 10_000
    assert "MIT License" in resources.files("core").joinpath("common_passwords.LICENSE").read_text()


def test_passwords_from_deep_in_the_list_are_refused() -> None:
    """Not only the top few: entries past the 10,000th are blocked too."""
    tail = [entry for entry in common_password_list()[10_000:] if len(entry) >= 8]
    sample = [*tail[:: max(1, len(tail) // 50)], tail[-1]]
    assert len(sample) >= 50
    for entry in sample:
        assert TOO_COMMON in password_problems(entry), entry


@pytest.mark.parametrize("password", ["password", "12345678", "Password1", "PASSWORD", "iloveyou"])
def test_common_password_is_refused_whatever_the_case(password: str) -> None:
    assert TOO_COMMON in password_problems(password)


@pytest.mark.parametrize("password", ["", "a", "Xq7!zp2"])
def test_password_shorter_than_eight_is_refused(password: str) -> None:
    assert "Use at least 8 characters." in password_problems(password)


def test_eight_characters_are_enough() -> None:
    assert password_problems("vq8#Lm2z") == []


def test_long_passphrase_is_accepted() -> None:
    passphrase = "my grandmother kept her tax returns in a shoebox under the stairs until nineteen ninety"
    passphrase = (passphrase + " every single year")[:100]
    assert len(passphrase) == 100
    assert password_problems(passphrase) == []


def test_no_composition_rules() -> None:
    """NIST 800-63B: no required digits, capitals or symbols."""
    assert password_problems("correct horse battery staple") == []
    assert password_problems("purplemonkeydishwasher") == []


def test_user_name_or_email_as_password_is_refused() -> None:
    problems = password_problems("Shelby.Jones77", "shelby.jones77", "shelby@example.com")
    assert "Don't use your user name or email as your password." in problems


def test_password_hash_is_argon2id_salted_and_verifies() -> None:
    password = "correct horse battery staple"
    first, second = hash_password(password), hash_password(password)
    assert first.startswith("$argon2id$")
    assert password not in first
    assert first != second  # salted
    assert verify_password(first, password)
    assert verify_password(second, password)
    assert not verify_password(first, "correct horse battery stapler")
    assert not verify_password(first, "")


def test_verify_against_garbage_hash_is_false_not_an_error() -> None:
    assert not verify_password("not-a-hash", "whatever123")
    assert not verify_password("", "whatever123")


# --- invite tokens -------------------------------------------------------------------------------------


KEY = secrets.token_bytes(32)
INVITE = InvitePayload(engagement_id=42, role="taxpayer", invite_seq=3)


def test_invite_token_round_trips_and_is_stable() -> None:
    token = make_invite_token(KEY, INVITE)
    assert read_invite_token(KEY, token) == INVITE
    assert make_invite_token(KEY, INVITE) == token  # a retried send builds the same link
    assert make_invite_token(KEY, InvitePayload(42, "taxpayer", 4)) != token
    assert make_invite_token(KEY, InvitePayload(42, "spouse", 3)) != token


def test_invite_token_is_url_safe() -> None:
    token = make_invite_token(KEY, InvitePayload(10**12, "spouse", 99))
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


def test_token_signed_with_another_key_is_refused() -> None:
    token = make_invite_token(secrets.token_bytes(32), INVITE)
    with pytest.raises(InvalidToken):
        read_invite_token(KEY, token)


def _other_char(c: str) -> str:
    return "B" if c == "A" else "A"


@pytest.mark.parametrize("position", [0, 5, -1])
def test_token_with_a_changed_character_is_refused(position: int) -> None:
    token = make_invite_token(KEY, INVITE)
    dot = token.index(".")
    for at in (position % dot, dot + 1 + position % (len(token) - dot - 1)):  # in the body, in the MAC
        changed = token[:at] + _other_char(token[at]) + token[at + 1 :]
        with pytest.raises(InvalidToken):
            read_invite_token(KEY, changed)


def test_token_for_another_engagement_cannot_borrow_a_signature() -> None:
    token = make_invite_token(KEY, INVITE)
    forged_body = make_invite_token(KEY, InvitePayload(43, "taxpayer", 3)).split(".")[0]
    with pytest.raises(InvalidToken):
        read_invite_token(KEY, forged_body + "." + token.split(".")[1])


@pytest.mark.parametrize("token", ["", ".", "abc", "abc.def", "a" * 200, "é.é", "..."])
def test_garbage_tokens_are_refused(token: str) -> None:
    with pytest.raises(InvalidToken):
        read_invite_token(KEY, token)


def test_token_with_an_unknown_role_is_refused() -> None:
    token = make_invite_token(KEY, InvitePayload(42, "preparer", 1))
    with pytest.raises(InvalidToken):
        read_invite_token(KEY, token)


def test_truncated_token_is_refused() -> None:
    token = make_invite_token(KEY, INVITE)
    with pytest.raises(InvalidToken):
        read_invite_token(KEY, token[:-1])


@pytest.mark.parametrize("suffix", ["!", "==", "\n"])
def test_token_with_trailing_characters_is_refused(suffix: str) -> None:
    token = make_invite_token(KEY, INVITE)
    with pytest.raises(InvalidToken):
        read_invite_token(KEY, token + suffix)
