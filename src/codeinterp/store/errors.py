"""Errors raised by store and service code, named for what went wrong; the API maps each to an
HTTP status and an OpenAI error object (`api/errors.py`)."""


class StoreError(Exception):
    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


class InvalidRequest(StoreError):
    """Bad input."""


class NotFound(StoreError):
    """An object that does not exist in the caller's project."""

    def __init__(self, kind: str, id: str) -> None:
        super().__init__(f"No {kind} found with id '{id}'.", param=None, code=None)
        self.kind = kind
        self.id = id


class ContainerExpired(InvalidRequest):
    """A container past its expiry: its metadata stays, its session and files are gone for good."""

    def __init__(self, container_id: str) -> None:
        super().__init__(f"Container '{container_id}' has expired; create a new container.",
                         param="container", code="container_expired")
        self.container_id = container_id


class QuotaExceeded(StoreError):
    """The project's storage quota would be passed (a client must free space; retrying cannot help)."""

    def __init__(self, quota_bytes: int) -> None:
        super().__init__(f"This project's storage quota of {quota_bytes // (1024 * 1024)} MB would be exceeded; "
                         "delete files to make room.", param="file", code="storage_quota_exceeded")


class Unavailable(StoreError):
    """The server cannot take this now (it is shutting down): retrying, on another replica or later, helps."""
