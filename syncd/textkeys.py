"""Comparison keys for text the way the synced systems compare it: trimmed, ASCII letters lower-cased.

The synced systems compare e-mail addresses (and some all text in their queries) without regard
to case, but none of them documents Unicode case *folding*, which makes 'straße' and 'strasse' one word and
would link two different people. Lower-casing only A-Z can at worst miss a match (a create the system then
refuses as a duplicate), never merge two addresses the systems keep apart.
"""

from __future__ import annotations

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def ascii_lower(text: str) -> str:
    """`text` with A-Z lower-cased and every other character kept as it is."""
    return text.translate(_ASCII_LOWER)


def text_key(text: str) -> str:
    """The key two texts are equal under when a system compares them case-insensitively: trimmed, ASCII
    lower-cased; an empty key means "no value"."""
    return ascii_lower(text.strip())
