"""Comparison keys for text the way the synced systems compare it: trimmed, ASCII letters lower-cased.

The synced systems compare e-mail addresses (and some all text in their queries) without regard
to case, but none of them documents Unicode case *folding*, which makes 'straße' and 'strasse' one word and
would link two different people. Lower-casing only A-Z can at worst miss a match (a create the system then
refuses as a duplicate), never merge two addresses the systems keep apart.
"""

from __future__ import annotations


def ascii_lower(text: str) -> str:
    """`text` with A-Z lower-cased and every other character kept as it is."""
    # Both several times faster than str.translate with an A-Z table: in ASCII text str.lower changes A-Z
    # alone; bytes.lower changes A-Z alone, and no byte of a UTF-8 sequence for any other character falls in
    # A-Z ('surrogatepass' carries lone surrogates through unchanged).
    if text.isascii():
        return text.lower()
    return text.encode("utf-8", "surrogatepass").lower().decode("utf-8", "surrogatepass")


def text_key(text: str) -> str:
    """The key two texts are equal under when a system compares them case-insensitively: trimmed, ASCII
    lower-cased; an empty key means "no value"."""
    return ascii_lower(text.strip())
