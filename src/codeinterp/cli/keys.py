"""`codeinterp keys create | list | revoke`: API keys in the configured database."""

import datetime
import sys

from codeinterp.cli.database import in_session
from codeinterp.store.errors import NotFound
from codeinterp.store.projects import create_api_key, list_api_keys, revoke_api_key


def create_key(project: str = "default") -> str:
    """Create a key for `project`, print it and return it."""
    _, key = in_session(lambda session: create_api_key(session, project))
    print(key)
    return key


def list_keys() -> None:
    rows = in_session(list_api_keys)
    print(f"{'id':<30} {'project':<20} {'prefix':<14} {'created (UTC)':<20} status")
    for key, project in rows:
        created = datetime.datetime.fromtimestamp(key.created_at, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        status = "revoked" if key.revoked_at else "active"
        print(f"{key.id:<30} {project:<20} {key.prefix + '…':<14} {created:<20} {status}")


def revoke_key(key_id: str) -> int:
    """Revoke a key; returns the exit status (1 when there is no such key)."""
    try:
        in_session(lambda session: revoke_api_key(session, key_id))
    except NotFound:
        print(f"No key with id {key_id}", file=sys.stderr)
        return 1
    print(f"Revoked {key_id}")
    return 0
