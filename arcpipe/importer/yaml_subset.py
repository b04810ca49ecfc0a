"""Read the YAML the reference writes beside its checkpoints (``all_config.yaml``), no PyYAML.

``pretrain.py`` dumps its resolved config with ``yaml.dump``: block mappings and sequences by
indentation, plain or quoted scalars (a long one wrapped onto more-indented lines), ``[]`` and
``{}`` for empty containers. This reader takes that subset, comments and flow lists of scalars
included, and refuses the rest (anchors, tags, block scalars, unresolved ``${...}``
interpolations) with one line naming the file and line, never guessing a value.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from arcpipe.errors import ArcpipeError

_INT = re.compile(r"[-+]?[0-9]+")
_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_BOOLS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}
_NULLS = {"", "~", "null"}


class YamlError(ValueError):
    """Not in the subset this reader takes; ``line`` is 1-based."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


@dataclass
class _Line:
    number: int  # 1-based, in the file
    indent: int
    text: str  # without the indentation and without a trailing comment


def read_yaml(path: str | Path) -> object:
    """The document in ``path`` as dicts, lists and scalars.

    Raises:
        ArcpipeError: unreadable, or not in the subset (the line is named).
    """
    path = Path(path)
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise ArcpipeError(
            f"cannot read: {getattr(err, 'strerror', None) or err}", file=path
        ) from None
    try:
        return parse_yaml(text)
    except YamlError as err:
        raise ArcpipeError(f"line {err.line}: {err}", file=path) from None


def parse_yaml(text: str) -> object:
    """Parse one YAML document of the subset (see the module docstring)."""
    lines = _lines(text)
    if not lines:
        return None
    value, end = _block(lines, 0, lines[0].indent)
    if end < len(lines):
        raise YamlError("unexpected indentation", lines[end].number)
    return value


def _lines(text: str) -> list[_Line]:
    out = []
    for number, raw in enumerate(text.splitlines(), 1):
        if "\t" in raw[: len(raw) - len(raw.lstrip())]:
            raise YamlError("tab in indentation", number)
        body = _strip_comment(raw.strip())
        if body in ("", "---", "..."):
            continue
        out.append(_Line(number, len(raw) - len(raw.lstrip(" ")), body))
    return out


def _strip_comment(text: str) -> str:
    """``text`` without a ``#`` comment (one at the start or after a space, outside quotes)."""
    quote = None
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"" and (i == 0 or text[i - 1] in " :-[,{"):
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1] == " "):
            return text[:i].rstrip()
    return text


def _block(lines: list[_Line], i: int, indent: int) -> tuple[object, int]:
    """The mapping or sequence whose entries start at ``lines[i]``, all at ``indent``."""
    if _is_item(lines[i].text):
        return _sequence(lines, i, indent)
    return _mapping(lines, i, indent)


def _is_item(text: str) -> bool:
    return text == "-" or text.startswith("- ")


def _mapping(lines: list[_Line], i: int, indent: int) -> tuple[dict, int]:
    out: dict = {}
    while i < len(lines) and lines[i].indent == indent and not _is_item(lines[i].text):
        line = lines[i]
        key, rest = _key(line)
        if key in out:
            raise YamlError(f"duplicate key {key!r}", line.number)
        i += 1
        if rest:
            out[key], i = _scalar_lines(lines, i, indent, rest, line.number)
        elif i < len(lines) and lines[i].indent > indent:
            out[key], i = _block(lines, i, lines[i].indent)
        elif i < len(lines) and lines[i].indent == indent and _is_item(lines[i].text):
            out[key], i = _sequence(lines, i, indent)  # yaml.dump's "key:\n- item"
        else:
            out[key] = None
    return out, i


def _sequence(lines: list[_Line], i: int, indent: int) -> tuple[list, int]:
    out: list = []
    while i < len(lines) and lines[i].indent == indent and _is_item(lines[i].text):
        line = lines[i]
        rest = line.text[1:].lstrip(" ")
        if not rest:
            i += 1
            if i < len(lines) and lines[i].indent > indent:
                value, i = _block(lines, i, lines[i].indent)
            else:
                value = None
        elif _looks_like_key(rest):  # "- key: value" opens a mapping one level in
            inner = indent + (len(line.text) - len(rest))
            lines[i] = _Line(line.number, inner, rest)
            value, i = _mapping(lines, i, inner)
        else:
            value, i = _scalar_lines(lines, i + 1, indent, rest, line.number)
        out.append(value)
    return out, i


def _looks_like_key(text: str) -> bool:
    return text[0] not in "'\"[{" and (": " in text or text.endswith(":"))


def _key(line: _Line) -> tuple[str, str]:
    text = line.text
    if text[0] in "'\"":
        end = _closing_quote(text, line.number)
        key, rest = _scalar(text[: end + 1], line.number), text[end + 1 :]
    else:
        cut = text.find(": ") if ": " in text else (len(text) - 1 if text.endswith(":") else -1)
        if cut < 0:
            raise YamlError(f"expected 'key: value', got {text!r}", line.number)
        key, rest = text[:cut], text[cut:]
    if not rest.startswith(":"):
        raise YamlError(f"expected ':' after the key in {text!r}", line.number)
    return str(key), rest[1:].strip()


def _scalar_lines(
    lines: list[_Line], i: int, indent: int, first: str, number: int
) -> tuple[object, int]:
    """A scalar starting with ``first``, continued on more-indented lines (plain scalars)."""
    parts = [first]
    while i < len(lines) and lines[i].indent > indent:
        parts.append(lines[i].text)
        i += 1
    return _scalar(" ".join(parts), number), i


def _scalar(text: str, number: int) -> object:
    if text[0] in "&*!|>%@`":
        raise YamlError(f"unsupported YAML ({text[0]!r}): write the plain value", number)
    if "${" in text:
        raise YamlError(f"unresolved interpolation {text!r}: write its value", number)
    if text[0] == "'":
        _closing_quote(text, number, whole=True)
        return text[1:-1].replace("''", "'")
    if text[0] == '"':
        _closing_quote(text, number, whole=True)
        try:
            return json.loads(text)
        except ValueError:
            raise YamlError(f"unsupported escape in {text!r}", number) from None
    if text[0] in "[{":
        return _flow(text, number)
    return _plain(text)


def _closing_quote(text: str, number: int, whole: bool = False) -> int:
    quote, i = text[0], 1
    while i < len(text):
        if text[i] == "\\" and quote == '"':
            i += 2
            continue
        if text[i] == quote:
            if quote == "'" and text[i + 1 : i + 2] == "'":
                i += 2
                continue
            if whole and i != len(text) - 1:
                raise YamlError(f"text after the closing quote in {text!r}", number)
            return i
        i += 1
    raise YamlError(f"unterminated quote in {text!r}", number)


def _flow(text: str, number: int) -> object:
    """``[]``, ``{}`` or a flow list of scalars ``[a, b]`` (nothing nested)."""
    close = "]" if text[0] == "[" else "}"
    if text[-1] != close:
        raise YamlError(f"unterminated flow collection {text!r}", number)
    body = text[1:-1].strip()
    if close == "}":
        if body:
            raise YamlError(f"flow mappings are not supported: {text!r}", number)
        return {}
    if any(ch in body for ch in "[]{}"):
        raise YamlError(f"nested flow collections are not supported: {text!r}", number)
    return [_scalar(item.strip(), number) for item in body.split(",")] if body else []


def _plain(text: str) -> object:
    lower = text.lower()
    if lower in _NULLS:
        return None
    if lower in _BOOLS:
        return _BOOLS[lower]
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    if lower in (".inf", "+.inf", "-.inf", ".nan"):
        return float(lower.replace(".", ""))
    return text
