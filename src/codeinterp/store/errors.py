"""Errors raised by store and service code; the API turns them into OpenAI error objects."""


class StoreError(Exception):
    status_code = 400

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


class InvalidRequest(StoreError):
    """Bad input: 400 invalid_request_error."""

    status_code = 400


class NotFound(StoreError):
    """An object that does not exist in the caller's project: 404."""

    status_code = 404

    def __init__(self, kind: str, id: str) -> None:
        super().__init__(f"No {kind} found with id '{id}'.", param=None, code=None)
        self.kind = kind
        self.id = id


class Conflict(StoreError):
    """The object's state forbids the request (e.g. a run already active): 409."""

    status_code = 409

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message, param=param, code=code)


class QuotaExceeded(StoreError):
    """The project's storage quota would be passed: 403 (a client must free space; retrying cannot help)."""

    status_code = 403

    def __init__(self, quota_bytes: int) -> None:
        super().__init__(f"This project's storage quota of {quota_bytes // (1024 * 1024)} MB would be exceeded; "
                         "delete files to make room.", param="file", code="storage_quota_exceeded")
