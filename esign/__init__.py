"""PDF checks, stamps, PAdES signing, sealing, the certificate of completion and the e-signature record.

A library: no Temporal or HTTP imports, usable from activities, services and the CLI alike.
"""
