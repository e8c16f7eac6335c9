"""Builds and runs the Temporal worker that executes Portico's workflows and activities."""
