"""JSON Patch (RFC 6902) over JSON Pointers (RFC 6901), for the FHIR R4 patch interaction
(http.html#patch, ``Content-Type: application/json-patch+json``).

Pure functions over JSON values (dicts, lists, str, int, float, bool, None). The patch is
applied to a deep copy: on any error nothing is changed (RFC 6902 §5, "the entire patch
document SHALL NOT be deemed successful"). Two error kinds, as RFC 5789 §2.2 sorts them:

* :class:`PatchInvalid`: the patch document itself is malformed (not an array, unknown
  ``op``, missing member, bad pointer syntax): HTTP 400;
* :class:`PatchFailed`: a well-formed patch cannot be applied to this resource (a path that
  does not exist, an index out of range, a failed ``test``): HTTP 422.
"""

from __future__ import annotations

import copy
from typing import Any

OPS = frozenset({"add", "remove", "replace", "move", "copy", "test"})
MAX_OPERATIONS = 1000


class PatchError(Exception):
    """A JSON Patch that cannot be used; ``index`` is the failing operation's position."""

    def __init__(self, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.index = index


class PatchInvalid(PatchError):
    """The patch document is not a valid RFC 6902 document (HTTP 400)."""


class PatchFailed(PatchError):
    """The patch is valid but cannot be applied to the target document (HTTP 422)."""


def parse_pointer(pointer: Any, index: int | None = None) -> list[str]:
    """The reference tokens of an RFC 6901 JSON Pointer (``""`` is the whole document)."""
    if not isinstance(pointer, str):
        raise PatchInvalid("a JSON Pointer must be a string", index)
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise PatchInvalid(f"JSON Pointer {pointer!r} must start with '/'", index)
    tokens = []
    for raw in pointer[1:].split("/"):
        if "~" in raw.replace("~0", "").replace("~1", ""):
            raise PatchInvalid(f"bad escape in JSON Pointer {pointer!r}", index)
        tokens.append(raw.replace("~1", "/").replace("~0", "~"))
    return tokens


def _array_index(token: str, size: int, *, allow_end: bool, index: int | None) -> int:
    if token == "-" and allow_end:
        return size
    if not token.isdigit() or (len(token) > 1 and token[0] == "0") or not token.isascii():
        raise PatchFailed(f"{token!r} is not an array index", index)
    position = int(token)
    limit = size if allow_end else size - 1
    if position > limit:
        raise PatchFailed(f"array index {position} is out of range", index)
    return position


def _parent(doc: Any, tokens: list[str], index: int | None) -> Any:
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict):
            if token not in node:
                raise PatchFailed(f"path member {token!r} does not exist", index)
            node = node[token]
        elif isinstance(node, list):
            node = node[_array_index(token, len(node), allow_end=False, index=index)]
        else:
            raise PatchFailed(f"cannot descend into a scalar at {token!r}", index)
    return node


def _get(doc: Any, tokens: list[str], index: int | None) -> Any:
    if not tokens:
        return doc
    parent = _parent(doc, tokens, index)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchFailed(f"path member {last!r} does not exist", index)
        return parent[last]
    if isinstance(parent, list):
        return parent[_array_index(last, len(parent), allow_end=False, index=index)]
    raise PatchFailed("the path goes through a scalar", index)


def _add(doc: Any, tokens: list[str], value: Any, index: int | None) -> Any:
    if not tokens:
        return value
    parent = _parent(doc, tokens, index)
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_array_index(last, len(parent), allow_end=True, index=index), value)
    else:
        raise PatchFailed("the target location's parent is a scalar", index)
    return doc


def _remove(doc: Any, tokens: list[str], index: int | None) -> tuple[Any, Any]:
    if not tokens:
        raise PatchFailed("cannot remove the whole document", index)
    parent = _parent(doc, tokens, index)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchFailed(f"path member {last!r} does not exist", index)
        return doc, parent.pop(last)
    if isinstance(parent, list):
        return doc, parent.pop(_array_index(last, len(parent), allow_end=False, index=index))
    raise PatchFailed("the target location's parent is a scalar", index)


def json_equal(a: Any, b: Any) -> bool:
    """Equality of RFC 6902 §4.6: numbers by value, no bool/number confusion, objects
    unordered, arrays ordered."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _member(operation: dict[str, Any], name: str, index: int) -> Any:
    if name not in operation:
        raise PatchInvalid(f"operation {index} ({operation.get('op')}) needs {name!r}", index)
    return operation[name]


def check(patch: Any) -> list[dict[str, Any]]:
    """The operations of a well-formed patch document (PatchInvalid otherwise)."""
    if not isinstance(patch, list):
        raise PatchInvalid("a JSON Patch document is a JSON array of operations")
    if len(patch) > MAX_OPERATIONS:
        raise PatchInvalid(f"at most {MAX_OPERATIONS} operations per patch")
    for index, operation in enumerate(patch):
        if not isinstance(operation, dict):
            raise PatchInvalid(f"operation {index} is not a JSON object", index)
        op = operation.get("op")
        if op not in OPS:
            raise PatchInvalid(f"operation {index}: unknown op {op!r}", index)
        parse_pointer(_member(operation, "path", index), index)
        if op in ("add", "replace", "test"):
            _member(operation, "value", index)
        if op in ("move", "copy"):
            parse_pointer(_member(operation, "from", index), index)
    return list(patch)


def apply(document: Any, patch: Any) -> Any:
    """``document`` patched by ``patch`` (a new value; ``document`` is left unchanged)."""
    operations = check(patch)
    doc = copy.deepcopy(document)
    for index, operation in enumerate(operations):
        op = operation["op"]
        path = parse_pointer(operation["path"], index)
        if op == "add":
            doc = _add(doc, path, copy.deepcopy(operation["value"]), index)
        elif op == "remove":
            doc, _ = _remove(doc, path, index)
        elif op == "replace":
            _get(doc, path, index)  # the target location MUST exist (§4.3)
            if path:
                doc, _ = _remove(doc, path, index)
            doc = _add(doc, path, copy.deepcopy(operation["value"]), index)
        elif op == "move":
            source = parse_pointer(operation["from"], index)
            if path[: len(source)] == source and path != source:
                raise PatchFailed("cannot move a value into one of its children", index)
            doc, value = _remove(doc, source, index)
            doc = _add(doc, path, value, index)
        elif op == "copy":
            source = parse_pointer(operation["from"], index)
            doc = _add(doc, path, copy.deepcopy(_get(doc, source, index)), index)
        elif not json_equal(_get(doc, path, index), operation["value"]):
            raise PatchFailed(f"test failed at {operation['path']!r}", index)
    return doc
