"""JSON parsing for the contract: the standard library as the reference, orjson and msgspec as fast paths used only
where they provably agree with it (:func:`load_json`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Final

from edge.wire.contract import MAX_DEPTH, MAX_KEY_CHARS, MAX_PAYLOAD_BYTES, PROTOCOL_VERSION, PayloadError

_orjson_loads: Callable[[bytes], Any] | None
_orjson_dumps: Callable[[Any], bytes] | None
try:
    from orjson import dumps as _orjson_dumps
    from orjson import loads as _orjson_loads
except ImportError:  # the base install: the standard library parser does everything
    _orjson_loads = _orjson_dumps = None

_msgspec_telemetry: Any
_UNSET: Any
try:  # typed one-pass telemetry decoding (see _telemetry_msgspec); the edge and hub extras install it
    from edge.wire import schemas

    _msgspec_telemetry, _UNSET = schemas.TELEMETRY_DECODER, schemas.UNSET
except ImportError:
    _msgspec_telemetry = _UNSET = None

# ---------------------------------------------------------------------- decoding


def _reject_constant(name: str) -> Any:
    raise PayloadError("bad_number", f"{name} is not a number the contract accepts")


def _pairs_no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise PayloadError("duplicate_key", f"key {dup!r} appears more than once")
    return obj


# Built once: json.loads(..., object_pairs_hook=...) would build a decoder per call (~2 µs).
_JSON_DECODER: Final = json.JSONDecoder(object_pairs_hook=_pairs_no_duplicates, parse_constant=_reject_constant)


def _nested(value: object, budget: int, where: str) -> None:
    """Refuse containers nested more than ``budget`` levels inside ``value`` (only containers are visited)."""
    if isinstance(value, dict):
        items: Any = value.values()
    elif isinstance(value, list):
        items = value
    else:
        return
    if budget <= 0:
        raise PayloadError("too_deep", f"{where} nests containers deeper than {MAX_DEPTH} levels")
    for item in items:
        if isinstance(item, (dict, list)):
            _nested(item, budget - 1, where)


def _check_unicode(value: object) -> None:
    """Refuse strings holding lone surrogates (from ``\\udXXX`` escapes), which cannot be encoded to UTF-8."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise PayloadError("bad_unicode", f"string holds a lone surrogate at {exc.start}") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_unicode(key)
            _check_unicode(item)
    elif isinstance(value, list):
        for item in value:
            _check_unicode(item)


def _extras(obj: Mapping[str, Any], known: frozenset[str], depth: int, where: str) -> None:
    """Keys the schema does not know are ignored, but their values must stay within :data:`MAX_DEPTH`."""
    if obj.keys() <= known:
        return
    for key in obj.keys() - known:
        if len(key) > MAX_KEY_CHARS:
            raise PayloadError("schema", f"{where} key of {len(key)} characters exceeds {MAX_KEY_CHARS}")
        _nested(obj[key], MAX_DEPTH - depth, f"{where}.{key[:MAX_KEY_CHARS]}")


#: Floats at least this large may be integer literals orjson could not hold in 64 bits (it returns
#: those as floats where the standard library gives ints): such payloads take the standard path.
_FAST_FLOAT_LIMIT: Final = 2.0**63
#: Containers nested deeper than this take the standard path (orjson writes at most 254 levels, so
#: the re-encoding proof stops there too). Parsing that deep the standard parser needs about as many
#: of the interpreter's ~1000 recursion levels; deeper, its refusal would depend on the caller's stack.
_FAST_MAX_DEPTH: Final = 254


def _plain_key_count(value: dict[str, Any] | list[Any], depth: int) -> int:
    """Keys in all objects inside ``value``, or -1 if a float may hide an integer or nesting is deep."""
    if depth > _FAST_MAX_DEPTH:
        return -1
    if type(value) is dict:
        count = len(value)
        items: Any = value.values()
    else:
        count = 0
        items = value
    for item in items:
        kind = type(item)
        if kind is float:
            if not -_FAST_FLOAT_LIMIT < item < _FAST_FLOAT_LIMIT:
                return -1
        elif kind is dict or kind is list:
            inner = _plain_key_count(item, depth + 1)
            if inner < 0:
                return -1
            count += inner
    return count


def _reencodes_to(obj: dict[str, Any], payload: bytes) -> bool:
    """True when orjson writes ``obj`` back as exactly ``payload`` (compact JSON, as our encoder writes)."""
    assert _orjson_dumps is not None
    try:
        return _orjson_dumps(obj) == payload
    except TypeError:  # nested deeper than orjson writes
        return False


def _fast_object(payload: bytes) -> dict[str, Any] | None:
    """Parse with orjson; None unless the result is provably what the standard path would return.

    orjson refuses everything the contract refuses at parse time (invalid UTF-8, NaN and
    Infinity, numbers that overflow a double, lone surrogates, nesting past 1024) and
    reads floats exactly as the standard library does (both round correctly), except two
    things it accepts silently: duplicate keys (it keeps the last) and integers beyond
    64 bits (it returns a float, of magnitude >= 2**63). Either proof rules both out:

    - re-encoding: if orjson writes the parsed object back as exactly the payload, the
      payload is the text of a dict (no key twice) whose numbers all read back as they
      are (an integer literal never comes back as float text, which has ``.`` or ``e``);
    - counting: every ``:`` byte in valid JSON separates one object member or sits inside
      a string, so ``payload.count(b":")`` is the members written plus the colons in
      strings, while a dropped duplicate leaves the parsed objects with fewer keys than
      members written: the parsed key count can only equal the colon count when no key
      is duplicated (and no string holds a colon); floats of magnitude >= 2**63 refuse it.
    """
    assert _orjson_loads is not None
    try:
        obj = _orjson_loads(payload)
    except Exception:  # any refusal: the standard path decides, and names the reason
        return None
    if type(obj) is not dict:
        return None
    if not _reencodes_to(obj, payload) and _plain_key_count(obj, 1) != payload.count(b":"):
        return None
    if b"\\u" in payload:  # orjson refuses lone surrogates itself; checked so the contract does not rest on it
        _check_unicode(obj)
    return obj


def _stdlib_object(payload: bytes) -> dict[str, Any]:
    """Parse with the standard library; the reference for every refusal's reason and text."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError("bad_utf8", f"payload is not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    try:
        obj = _JSON_DECODER.decode(text)
    except PayloadError:
        raise
    except RecursionError as exc:
        raise PayloadError("too_deep", "JSON nesting is far deeper than the schema") from exc
    except ValueError as exc:  # json.JSONDecodeError and int digit limits
        raise PayloadError("bad_json", str(exc)) from exc
    if not isinstance(obj, dict):
        raise PayloadError("schema", f"payload must be a JSON object, not {type(obj).__name__}")
    if "\\u" in text:  # only an escape can produce a lone surrogate; our encoder never writes one
        _check_unicode(obj)
    return obj


def load_json(payload: bytes, *, fast: bool = True) -> dict[str, Any]:
    """Parse a JSON object under the contract's limits (size, UTF-8, duplicates, NaN, surrogates).

    With orjson installed and ``fast`` set, orjson parses first; whatever it refuses, or
    accepts without proof that the standard library would return the same object, is
    parsed again by the standard library, so results and refusals never depend on it.
    ``fast=False`` forces the standard library (the reference the fast path is tested against).
    """
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise PayloadError("too_large", f"{len(payload)} bytes exceeds the {MAX_PAYLOAD_BYTES}-byte cap")
    obj = _fast_object(payload) if fast and _orjson_loads is not None else None
    if obj is None:
        obj = _stdlib_object(payload)
    version = obj.get("v")
    if version != PROTOCOL_VERSION:
        raise PayloadError("unknown_version", f"payload version {version!r} is not {PROTOCOL_VERSION}")
    return obj
