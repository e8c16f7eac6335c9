"""Delivery backends (dev outbox, SMTP, SendGrid, Twilio), the outbox ledger and the wording of messages.

A library: no Temporal or HTTP imports.
"""
