"""Composition only: the app factory (`portico.app`) and the `portico` command (`portico.cli`)."""
