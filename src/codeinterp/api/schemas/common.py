"""Shapes shared by every resource: the base of request bodies, `Metadata`, one list page
(`ListResponse[Item]`, named per resource by a subclass), and the contract's `Error`."""

from typing import Annotated, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints
from pydantic_core import PydanticCustomError

MAX_METADATA_KEYS = 16


class RequestModel(BaseModel):
    """The base of every request body: a field the contract does not name is refused."""

    model_config = ConfigDict(extra="forbid")


def invalid(message: str, at: str | None = None) -> PydanticCustomError:
    """A validation error for a validator to raise. `at` names the part at fault below the
    value being validated ("1.function.name"); the error's `param` then ends with it."""
    return PydanticCustomError("invalid_value", message, {"at": at})


def _metadata_keys(metadata: dict[str, str]) -> dict[str, str]:
    if len(metadata) > MAX_METADATA_KEYS:
        raise invalid(f"metadata can have at most {MAX_METADATA_KEYS} keys.")
    if any(len(key) > 64 for key in metadata):
        raise invalid("metadata keys can be at most 64 characters long.")
    return metadata


Metadata = Annotated[dict[str, Annotated[str, StringConstraints(max_length=512)]], AfterValidator(_metadata_keys)]

Item = TypeVar("Item")


class ListResponse(BaseModel, Generic[Item]):
    object: Literal["list"]
    data: list[Item]
    first_id: str | None
    last_id: str | None
    has_more: bool


class Error(BaseModel):
    code: str | None
    message: str
    param: str | None
    type: str


class ErrorResponse(BaseModel):
    error: Error
