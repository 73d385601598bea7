"""Object ids in OpenAI's style and Unix timestamps."""

import secrets
import string
import time

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str) -> str:
    """`new_id("asst")` -> `asst_<24 random chars>`; files use a dash: `file-<24 chars>`."""
    tail = "".join(secrets.choice(_ALPHABET) for _ in range(24))
    separator = "-" if prefix == "file" else "_"
    return f"{prefix}{separator}{tail}"


def now() -> int:
    """The current time in Unix seconds."""
    return int(time.time())
