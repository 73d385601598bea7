"""Text that is stored or sent is valid UTF-8.

Python strings may hold lone surrogates (a file name that is not UTF-8, decoded with
`surrogateescape`; a JSON `\\udcff` escape from a sandbox or a model); UTF-8 cannot encode
them, so the database driver, orjson and the SSE stream would refuse the whole value.
They become U+FFFD here instead.
"""

import orjson


def valid_utf8(text: str) -> str:
    """`text` with every lone surrogate replaced: an escaped byte of a non-UTF-8 name by one
    U+FFFD (as decoding those bytes with errors="replace" would), any other surrogate likewise."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "surrogatepass")
    return raw.decode("utf-8", "replace")


def _clean(value):
    if isinstance(value, str):
        return valid_utf8(value)
    if isinstance(value, dict):
        return {_clean(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def json_text(value) -> str:
    """`value` as JSON text; strings that are not valid UTF-8 are made so first."""
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        return orjson.dumps(_clean(value)).decode()
