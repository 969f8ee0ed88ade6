"""An independent line-protocol parser for the tests, written from the InfluxDB 1.x scanner rules.

It scans the way influxd does (a backslash always protects the next character
from ending a token; only ``\\,`` ``\\=`` ``\\ `` are unescaped in names and only
``\\"`` ``\\\\`` in strings) so a line the encoder gets wrong parses differently
here than what was meant -- that is what the property tests look for.
"""

from __future__ import annotations

from dataclasses import dataclass

FieldValue = bool | int | float | str


class ParseError(ValueError):
    """The text is not one valid line."""


@dataclass
class Parsed:
    """One parsed line."""

    measurement: str
    tags: dict[str, str]
    fields: dict[str, FieldValue]
    ts: int


def _token(line: str, i: int, stops: str) -> tuple[str, int]:
    start = i
    while i < len(line):
        if line[i] == "\\":
            i += 2
            continue
        if line[i] in stops:
            break
        i += 1
    return line[start : min(i, len(line))], min(i, len(line))


def _unescape(raw: str, chars: str) -> str:
    out, i = [], 0
    while i < len(raw):
        if raw[i] == "\\" and i + 1 < len(raw) and raw[i + 1] in chars:
            out.append(raw[i + 1])
            i += 2
        else:
            out.append(raw[i])
            i += 1
    return "".join(out)


def _value(line: str, i: int) -> tuple[FieldValue, int]:
    if line[i] == '"':
        out, i = [], i + 1
        while True:
            if i >= len(line):
                raise ParseError("unterminated string")
            if line[i] == "\\" and i + 1 < len(line) and line[i + 1] in '"\\':
                out.append(line[i + 1])
                i += 2
            elif line[i] == '"':
                return "".join(out), i + 1
            else:
                out.append(line[i])
                i += 1
    raw, i = _token(line, i, ", ")
    if raw in ("true", "false"):
        return raw == "true", i
    if raw.endswith("i"):
        return int(raw[:-1]), i
    return float(raw), i


def parse(text: str) -> Parsed:
    """Parse exactly one line; raise :class:`ParseError` on anything else (including a second line)."""
    if "\n" in text:
        raise ParseError("more than one line")
    raw, i = _token(text, 0, ", ")
    measurement = _unescape(raw, ", ")
    tags: dict[str, str] = {}
    while i < len(text) and text[i] == ",":
        key, i = _token(text, i + 1, "=, ")
        if i >= len(text) or text[i] != "=":
            raise ParseError("tag without =")
        value, i = _token(text, i + 1, ", ")
        name = _unescape(key, ",= ")
        if name in tags:
            raise ParseError(f"duplicate tag {name}")
        tags[name] = _unescape(value, ",= ")
    if i >= len(text) or text[i] != " ":
        raise ParseError("no fields")
    fields: dict[str, FieldValue] = {}
    while True:
        key, i = _token(text, i + 1, "=, ")
        if i >= len(text) or text[i] != "=":
            raise ParseError("field without =")
        name = _unescape(key, ",= ")
        if name in fields:
            raise ParseError(f"duplicate field {name}")
        fields[name], i = _value(text, i + 1)
        if i >= len(text) or text[i] != ",":
            break
    if i >= len(text) or text[i] != " ":
        raise ParseError("no timestamp")
    ts_text = text[i + 1 :]
    if not ts_text.lstrip("-").isdigit():
        raise ParseError(f"bad timestamp {ts_text!r}")
    return Parsed(measurement, tags, fields, int(ts_text))
