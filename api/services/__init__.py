"""Taxpayer rules shared by the JSON API (`api/routes/taxpayer.py`) and the portal pages (`web/`).

Each service raises `ServiceError` for a refusal a person can act on: the API returns it as JSON, the
pages show it next to the field it names.
"""

from __future__ import annotations

from fastapi import HTTPException


class ServiceError(HTTPException):
    """An HTTP error whose message is meant for the person; `field` names the form field at fault."""

    def __init__(self, status_code: int, message: str, field: str | None = None) -> None:
        super().__init__(status_code, message)
        self.field = field

    @property
    def message(self) -> str:
        return str(self.detail)
