"""The Temporal payload codec (workflows/client.py): fails closed, binds each payload to its workflow, and
keeps failure messages out of history in clear (security round two, item 7)."""

from __future__ import annotations

import dataclasses
import os
import secrets
import uuid
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio import activity, workflow
from temporalio.api.common.v1 import Payload
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.converter import (
    ActivitySerializationContext,
    DataConverter,
    WorkflowSerializationContext,
)
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from core.crypto import Cipher
from workflows.client import EncryptionCodec, PayloadRefused, data_converter

KEY = secrets.token_bytes(32)
EMAIL = "shelby.oneil@example.com"


def context(workflow_id: str, namespace: str = "default") -> WorkflowSerializationContext:
    return WorkflowSerializationContext(namespace=namespace, workflow_id=workflow_id)


def activity_context(workflow_id: str) -> ActivitySerializationContext:
    return ActivitySerializationContext(
        namespace="default",
        activity_id="1",
        activity_type="send_message",
        activity_task_queue="q",
        workflow_id=workflow_id,
        workflow_type="EngagementWorkflow",
        is_local=False,
    )


def plain(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=f'"{text}"'.encode())


async def test_item7_codec_refuses_plain_payloads() -> None:
    """Before: a plain payload passed straight through decoding (fail open)."""
    codec = EncryptionCodec(KEY).with_context(context("engagement-1"))
    with pytest.raises(PayloadRefused, match="unencrypted"):
        await codec.decode([plain("a signal a tool wrote in clear")])
    # The explicit, narrow allowance: decode only, the SDK's own encodings only.
    lenient = EncryptionCodec(KEY, accept_plain=True).with_context(context("engagement-1"))
    assert (await lenient.decode([plain("x")]))[0].data == b'"x"'
    with pytest.raises(PayloadRefused):
        await lenient.decode([Payload(metadata={"encoding": b"binary/something-else"}, data=b"x")])
    # Encoding always seals. A short plaintext could turn up in random ciphertext: look for a long one.
    (sealed,) = await lenient.encode([plain("a note the worker writes back")])
    assert sealed.metadata["encoding"] == b"binary/portico-aes-gcm-bound"
    assert b"a note the worker" not in sealed.data


async def test_item7_ciphertext_from_one_workflow_does_not_decode_in_another() -> None:
    codec = EncryptionCodec(KEY)
    (sealed,) = await codec.with_context(context("engagement-1")).encode([plain(EMAIL)])
    assert EMAIL.encode() not in sealed.SerializeToString()
    # The workflow's own activities share its binding (namespace + workflow id).
    for same in (context("engagement-1"), activity_context("engagement-1")):
        assert (await codec.with_context(same).decode([sealed]))[0].data == f'"{EMAIL}"'.encode()
    for other in (context("engagement-2"), context("engagement-1", "other-namespace")):
        with pytest.raises(PayloadRefused, match="another workflow"):
            await codec.with_context(other).decode([sealed])
    # Rewriting the binding in the metadata does not help: with a context, the context decides, and without
    # one the metadata binding is authenticated as associated data.
    forged = Payload()
    forged.CopyFrom(sealed)
    forged.metadata["portico-binding"] = b"default\x00engagement-2"
    with pytest.raises(PayloadRefused):
        await codec.with_context(context("engagement-2")).decode([forged])
    with pytest.raises(PayloadRefused):
        await codec.decode([forged])
    assert (await codec.decode([sealed]))[0].data == f'"{EMAIL}"'.encode()


async def test_item7_payloads_of_the_old_unbound_encoding_still_decode() -> None:
    """Histories written before binding (tests/histories/, replayed by test_replay.py) keep decoding."""
    inner = plain(EMAIL).SerializeToString()
    nonce = os.urandom(12)
    old = Payload(
        metadata={"encoding": b"binary/portico-aes-gcm"},
        data=nonce + AESGCM(KEY).encrypt(nonce, inner, None),
    )
    for codec in (EncryptionCodec(KEY), EncryptionCodec(KEY).with_context(context("engagement-9"))):
        assert (await codec.decode([old]))[0].data == f'"{EMAIL}"'.encode()
    with pytest.raises(PayloadRefused):  # still under the key: another key does not open it
        await EncryptionCodec(secrets.token_bytes(32)).decode([old])


@activity.defn(name="look_up_account")
async def look_up_account(email: str) -> str:
    raise ApplicationError(f"no account for {email}", non_retryable=True)


@workflow.defn(name="CodecProbe", sandboxed=False)
class CodecProbe:
    @workflow.run
    async def run(self, email: str) -> str:
        return await workflow.execute_activity(
            look_up_account,
            email,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(maximum_attempts=1),
        )


async def test_item7_failure_messages_naming_an_email_never_reach_history_in_clear(
    dev_server: WorkflowEnvironment,
) -> None:
    client = dev_server.client
    queue, workflow_id = f"codec-{uuid.uuid4().hex[:8]}", f"codec-probe-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[CodecProbe],
        activities=[look_up_account],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        with pytest.raises(WorkflowFailureError) as failed:
            await client.execute_workflow(CodecProbe.run, EMAIL, id=workflow_id, task_queue=queue)
    # Decoded with the key, the message is whole ...
    assert f"no account for {EMAIL}" in str(failed.value.cause.cause)  # type: ignore[union-attr]
    # ... but the history the server keeps holds neither the email nor the message, anywhere.
    raw = await Client.connect(
        client.service_client.config.target_host, namespace=client.namespace, data_converter=DataConverter()
    )
    history = await raw.get_workflow_handle(workflow_id).fetch_history()
    stored = b"".join(event.SerializeToString() for event in history.events)
    assert EMAIL.encode() not in stored and b"no account for" not in stored
    assert b"Encoded failure" in stored and b"binary/portico-aes-gcm-bound" in stored


def test_item7_every_client_uses_the_encoded_failure_converter() -> None:
    converter = data_converter(Cipher(KEY))
    assert converter.failure_converter._encode_common_attributes  # type: ignore[attr-defined]
    assert isinstance(converter.payload_codec, EncryptionCodec)
    assert dataclasses.replace(converter).failure_converter._encode_common_attributes  # type: ignore[attr-defined]
