"""Text the database can store: PostgreSQL refuses NUL in text columns and UTF-8 cannot encode
a lone surrogate (``"\\ud800"`` is valid JSON), so such input is refused as bad input (400)
before anything is stored, and what the face writes to the trace from a request is escaped."""

from __future__ import annotations

from typing import Any


def _bad_text(text: str) -> bool:
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def unstorable(value: Any) -> bool:
    """Whether a JSON value (keys included) holds a string no text column can store."""
    if isinstance(value, str):
        return _bad_text(value)
    if isinstance(value, dict):
        return any(_bad_text(str(k)) or unstorable(v) for k, v in value.items())
    if isinstance(value, list):
        return any(unstorable(v) for v in value)
    return False


def storable(text: str) -> str:
    """``text`` with NUL and lone surrogates written as backslash escapes."""
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
