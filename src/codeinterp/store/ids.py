"""Object ids in OpenAI's style and Unix timestamps."""

import secrets
import string
import time

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str) -> str:
    """`new_id("asst")` -> `asst_<24 random chars>`; files use a dash: `file-<24 chars>`."""
    tail = ""
    while len(tail) < 24:  # one read of random bytes; those past the last whole multiple of 62 are dropped
        tail += "".join(_ALPHABET[b % 62] for b in secrets.token_bytes(32) if b < 248)
    tail = tail[:24]
    separator = "-" if prefix == "file" else "_"
    return f"{prefix}{separator}{tail}"


def now() -> int:
    """The current time in Unix seconds."""
    return int(time.time())
