"""Salesforce record ids: 15-character case-sensitive ids and their 18-character case-safe form."""

from __future__ import annotations

import re

_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ID15 = re.compile(r"[0-9A-Za-z]{15}")
_ID18 = re.compile(r"[0-9A-Za-z]{15}[A-Z0-5]{3}")
# Instance and reserved characters of every id this org mints, after the three-character key prefix.
_POD = "Sb0"


def case_safe_suffix(id15: str) -> str:
    """Return the three checksum characters Salesforce appends to a 15-character id."""
    suffix = ""
    for chunk in range(3):
        bits = 0
        for position, char in enumerate(id15[chunk * 5 : chunk * 5 + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << position
        suffix += _SUFFIX_ALPHABET[bits]
    return suffix


def normalize_id(value: str) -> str | None:
    """Return the 18-character form of a 15- or 18-character id, or None when value is not an id."""
    if _ID15.fullmatch(value):
        return value + case_safe_suffix(value)
    if _ID18.fullmatch(value) and case_safe_suffix(value[:15]) == value[15:]:
        return value
    return None


def mint_id(key_prefix: str, serial: int) -> str:
    """Return the 18-character id of the serial-th record with the given key prefix."""
    digits = ""
    remaining = serial
    for _ in range(9):
        remaining, digit = divmod(remaining, 62)
        digits = _BASE62[digit] + digits
    id15 = key_prefix + _POD + digits
    return id15 + case_safe_suffix(id15)
