"""Find the line of every key in TOML text, because tomllib reports values but no positions."""

from __future__ import annotations

import re

#: A key path inside a TOML document, e.g. ("connections", "crm", "rate_limit") or ("objects", 0).
KeyPath = tuple[str | int, ...]

_BARE = re.compile(r"[A-Za-z0-9_-]+")


def _split_key(text: str) -> tuple[list[str], str]:
    """Split a (dotted, possibly quoted) key off the front of `text`; return the parts and the rest."""
    parts: list[str] = []
    i = 0
    while True:
        while i < len(text) and text[i] in " \t":
            i += 1
        if i < len(text) and text[i] in "\"'":
            quote = text[i]
            end = text.find(quote, i + 1)
            while quote == '"' and end > 0 and text[end - 1] == "\\":
                end = text.find(quote, end + 1)
            if end < 0:
                return parts, ""
            parts.append(text[i + 1 : end])
            i = end + 1
        else:
            match = _BARE.match(text, i)
            if not match:
                return parts, text[i:]
            parts.append(match.group())
            i = match.end()
        while i < len(text) and text[i] in " \t":
            i += 1
        if i < len(text) and text[i] == ".":
            i += 1
            continue
        return parts, text[i:]


class _ValueScanner:
    """Follows one value across lines, noting where each element of an array starts."""

    def __init__(self) -> None:
        self.depth = 0
        self.string: str | None = None  # the open quote: ", ', \"\"\" or '''
        self.stack: list[str] = []
        self.element_index: list[int] = []
        self.expect_element = False

    def feed(self, text: str, line: int, path: KeyPath, lines: dict[KeyPath, int]) -> None:
        """Consume one line (or the value part of the first line)."""
        i = 0
        while i < len(text):
            ch = text[i]
            if self.string is not None:
                if self.string in ('"', '"""') and ch == "\\":
                    i += 2
                    continue
                if text.startswith(self.string, i):
                    i += len(self.string)
                    self.string = None
                    continue
                i += 1
                continue
            if ch == "#":
                break
            if ch in " \t\r\n":
                i += 1
                continue
            if self.expect_element and ch not in "],}":
                self.expect_element = False
                # Only elements of the key's own array get a path; nested ones fall back to it.
                if self.stack == ["["]:
                    lines.setdefault((*path, self.element_index[-1]), line)
            if text.startswith('"""', i) or text.startswith("'''", i):
                self.string = text[i : i + 3]
                i += 3
                continue
            if ch in "\"'":
                self.string = ch
            elif ch in "[{":
                self.stack.append(ch)
                if ch == "[":
                    self.element_index.append(0)
                    self.expect_element = True
            elif ch in "]}":
                if self.stack and self.stack.pop() == "[":
                    self.element_index.pop()
            elif ch == "," and self.stack and self.stack[-1] == "[":
                self.element_index[-1] += 1
                self.expect_element = True
            i += 1
        if self.string in ('"', "'"):
            self.string = None  # single-line strings cannot span lines; TOML itself reports the error

    @property
    def open(self) -> bool:
        """Whether the value continues on the next line."""
        return bool(self.stack) or self.string is not None


def locate_keys(text: str) -> dict[KeyPath, int]:
    """Map each key path in `text` (tables, keys, array-of-table entries, array elements) to its 1-based line."""
    lines: dict[KeyPath, int] = {}
    table: KeyPath = ()
    array_counts: dict[KeyPath, int] = {}
    scanner: _ValueScanner | None = None
    value_path: KeyPath = ()
    for number, raw in enumerate(text.splitlines(), start=1):
        if scanner is not None:
            scanner.feed(raw, number, value_path, lines)
            if not scanner.open:
                scanner = None
            continue
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("[["):
            parts, _ = _split_key(stripped[2:])
            base: KeyPath = _resolve_arrays(tuple(parts), array_counts)
            index = array_counts.get(base, 0)
            array_counts[base] = index + 1
            lines.setdefault(base, number)
            table = (*base, index)
            lines[table] = number
            continue
        if stripped.startswith("["):
            parts, _ = _split_key(stripped[1:])
            table = _resolve_arrays(tuple(parts), array_counts)
            for end in range(1, len(table)):
                lines.setdefault(table[:end], number)
            lines[table] = number
            continue
        parts, rest = _split_key(stripped)
        if not parts or not rest.lstrip().startswith("="):
            continue
        key_path: KeyPath = (*table, *parts)
        for end in range(len(table) + 1, len(key_path)):
            lines.setdefault(key_path[:end], number)
        lines[key_path] = number
        scanner = _ValueScanner()
        value_path = key_path
        scanner.feed(rest.lstrip()[1:], number, value_path, lines)
        if not scanner.open:
            scanner = None
    return lines


def _resolve_arrays(parts: tuple[str, ...], array_counts: dict[KeyPath, int]) -> KeyPath:
    """Insert the current index after each prefix that names an array of tables (`[[objects.fields]]`)."""
    out: list[str | int] = []
    for i, part in enumerate(parts):
        out.append(part)
        prefix = tuple(out)
        if prefix in array_counts and i < len(parts) - 1:
            out.append(array_counts[prefix] - 1)
    return tuple(out)
