"""Temporal activities: the blocking work Portico workflows delegate to the worker."""
