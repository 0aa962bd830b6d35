"""A parsed TOML file that remembers where each key was written, for error messages with line numbers."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from syncd.errors import Problem
from syncd.tomllocator import locate_keys

KeyPath = Sequence[str | int]

_SYNTAX_LINE = re.compile(r"\(at line (\d+), column \d+\)")


@dataclass(frozen=True)
class TomlSource:
    """The text and data of one TOML file, with a map from key paths to the line they were written on."""

    path: Path
    data: dict[str, Any]
    lines: dict[tuple[str | int, ...], int] = field(repr=False)

    @classmethod
    def read(cls, path: Path) -> TomlSource:
        """Read and parse `path`; raise `TomlSyntaxError` with the file and line on bad syntax."""
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise TomlSyntaxError(Problem(str(path), "", f"cannot read file: {exc.strerror}")) from exc
        return cls.parse(text, path)

    @classmethod
    def parse(cls, text: str, path: Path) -> TomlSource:
        """Parse TOML text that came from `path`."""
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            m = _SYNTAX_LINE.search(str(exc))
            line = int(m.group(1)) if m else None
            if line is None and "end of document" in str(exc):
                line = max(1, len(text.splitlines()))
            message = _SYNTAX_LINE.sub("", str(exc)).strip()
            raise TomlSyntaxError(Problem(str(path), "", f"invalid TOML: {message}", line)) from exc
        return cls(path=path, data=data, lines=locate_keys(text))

    def line_of(self, key_path: KeyPath) -> int | None:
        """The line where `key_path` (or its nearest written ancestor) appears, if known."""
        key = tuple(key_path)
        while key:
            if key in self.lines:
                return self.lines[key]
            key = key[:-1]
        return None

    def problem(self, key_path: KeyPath, message: str) -> Problem:
        """A problem at `key_path` of this file, with its line."""
        return Problem(str(self.path), format_key_path(key_path), message, self.line_of(key_path))


class TomlSyntaxError(Exception):
    """The file is not valid TOML; carries the problem with its line."""

    def __init__(self, problem: Problem) -> None:
        self.problem = problem
        super().__init__(str(problem))


def format_key_path(key_path: KeyPath) -> str:
    """Render a key path as `connections.crm.rate_limit` or `objects[2].fields`."""
    out = ""
    for part in key_path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out
