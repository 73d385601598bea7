"""Files API shapes, named and shaped as in the contract (OpenAIFile, ListFilesResponse, ...)."""

from typing import Literal

from pydantic import BaseModel, Field

from codeinterp.api.schemas.common import ListResponse

FilePurpose = Literal["assistants", "assistants_output", "batch", "batch_output", "fine-tune",
                      "fine-tune-results", "vision", "user_data"]


class OpenAIFile(BaseModel):
    id: str
    bytes: int
    created_at: int
    expires_at: int | None = None
    filename: str
    object: Literal["file"]
    purpose: FilePurpose
    status: Literal["uploaded", "processed", "error"]
    status_details: str | None = None


class ListFilesResponse(ListResponse[OpenAIFile]):
    pass


class DeleteFileResponse(BaseModel):
    id: str
    object: Literal["file"]
    deleted: bool


class FileExpirationAfter(BaseModel):
    anchor: Literal["created_at"]
    seconds: int = Field(ge=3600, le=2592000)


CREATE_FILE_REQUEST_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "file": {"type": "string", "format": "binary", "description": "The File object (not file name) to be uploaded."},
        "purpose": {"type": "string", "enum": ["assistants", "batch", "fine-tune", "vision", "user_data", "evals"]},
        "expires_after": {"$ref": "#/components/schemas/FileExpirationAfter"},
    },
    "required": ["file", "purpose"],
}
