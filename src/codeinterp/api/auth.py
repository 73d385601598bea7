"""API keys: `Authorization: Bearer KEY` or HTTP Basic with the key as password."""

import base64
import binascii
import hmac

from fastapi import Request

from codeinterp.api.errors import APIError
from codeinterp.logs import add_to_context
from codeinterp.store.projects import DEFAULT_PROJECT_ID, project_for_key


def _key_from_header(header: str | None) -> str | None:
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return value or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, _, password = decoded.partition(":")
        return password or user or None
    return None


def _unauthorized(message: str) -> APIError:
    return APIError(401, message, param=None, code="invalid_api_key",
                    headers={"WWW-Authenticate": 'Bearer realm="codeinterp"'})


async def current_project(request: Request) -> str:
    """FastAPI dependency: the id of the project the request's key belongs to (401 otherwise)."""
    key = _key_from_header(request.headers.get("authorization"))
    if key is None:
        raise _unauthorized("You didn't provide an API key. You need to provide your API key in an Authorization "
                            "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
    settings = request.app.state.settings
    if settings.api_key and hmac.compare_digest(key.encode(), settings.api_key.encode()):
        add_to_context(project_id=DEFAULT_PROJECT_ID)
        return DEFAULT_PROJECT_ID
    async with request.app.state.database.session() as session:
        project_id = await project_for_key(session, key)
    if project_id is None:
        shown = key[:6] + "*" * 4 + key[-4:] if len(key) > 12 else "*" * len(key)
        raise _unauthorized(f"Incorrect API key provided: {shown}.")
    add_to_context(project_id=project_id)
    return project_id
