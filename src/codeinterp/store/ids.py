"""Object ids in OpenAI's style, Unix timestamps, and the one clock that orders what is created."""

import secrets
import string
import threading
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


_sequence_lock = threading.Lock()
_last_sequence = 0


def next_sequence() -> int:
    """A creation-order key, finer than `created_at` seconds: nanoseconds since the epoch, strictly
    increasing within this process. Files, assistants, messages and runs take theirs from here, so a
    thread's messages and runs sort together on one timeline."""
    global _last_sequence
    with _sequence_lock:
        _last_sequence = max(time.time_ns(), _last_sequence + 1)
        return _last_sequence
