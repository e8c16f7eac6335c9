"""The thin HTTP layer: authenticate, authorise, validate, then read the database or ask the workflow."""
