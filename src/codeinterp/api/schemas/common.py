"""Shapes shared by every resource (from the contract: Error, ErrorResponse)."""

from pydantic import BaseModel


class Error(BaseModel):
    code: str | None
    message: str
    param: str | None
    type: str


class ErrorResponse(BaseModel):
    error: Error
