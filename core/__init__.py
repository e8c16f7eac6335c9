"""Shared domain code for Portico: settings, database, storage, crypto, identity, audit."""
