"""Match keys compare e-mail addresses as the systems do: trimmed, A-Z ignoring case, nothing else folded."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.mapping.compiled import CompiledMapping, ObjectMapper
from syncd.mapping.loader import SHIPPED_MAPPINGS_DIR, load_mapping
from syncd.textkeys import ascii_lower


@cache
def shipped() -> list[CompiledMapping]:
    """The shipped mappings (both customer objects match on e-mail), loaded once."""
    return [load_mapping(SHIPPED_MAPPINGS_DIR / f"{n}-zohobooks.toml") for n in ("hubspot", "salesforce")]


# Letters whose Unicode case mapping or folding is not one-to-one, or reaches ASCII: the places where a
# careless normalisation makes two addresses one (ß/ss, the long s, the Kelvin sign, dotted and dotless i).
TRICKY = "ßSsſKkKıIİiµΜμΣσςﬀǅǄǆẞÅåÅ"
LOCAL = st.text(
    alphabet=st.sampled_from(TRICKY) | st.characters(exclude_categories=["Cs", "Cc", "Zs", "Zl", "Zp"]),
    min_size=1,
    max_size=12,
)
SPACES = st.text(alphabet=" \t\n\u00a0\u2003", max_size=3)
VARIANTS: list[Callable[[str], str]] = [str.upper, str.lower, str.casefold, str.swapcase, str.title, ascii_lower,
                                        lambda s: s]  # fmt: skip


def _unchanged_or_none(address: str) -> str | None:
    """What an address is as the systems compare it: trimmed, A-Z lower-cased; None when blank."""
    return ascii_lower(address.strip()) or None


def _keys(mapping: CompiledMapping, crm_email: str, acc_email: str) -> tuple[object, object]:
    customer: ObjectMapper = mapping.objects["customer"]
    crm_field = customer.fields["email"].scalar.side_name("crm")
    return (
        customer.match_key("crm", {crm_field: crm_email}),
        customer.match_key("accounting", {"primary_contact.email": acc_email}),
    )


@settings(max_examples=300, deadline=None)
@given(
    local=LOCAL,
    domain=st.sampled_from(["example.com", "EXAMPLE.org", "bücher.de"]),
    variant=st.sampled_from(VARIANTS),
    spaces=st.tuples(SPACES, SPACES),
)
def test_addresses_the_systems_keep_apart_never_share_a_match_key(
    local: str, domain: str, variant: Callable[[str], str], spaces: tuple[str, str]
) -> None:
    address = f"{local}@{domain}"
    other = spaces[0] + variant(address) + spaces[1]
    same = _unchanged_or_none(address) == _unchanged_or_none(other)
    for mapping in shipped():
        crm_key, acc_key = _keys(mapping, address, other)
        # Equal keys (a link) exactly when the two addresses differ by nothing but A-Z case and the spaces
        # around them; any other difference, however a Unicode case mapping would see it, keeps them apart.
        assert (crm_key == acc_key) == same, (address, other)
        assert crm_key is not None


@settings(max_examples=200, deadline=None)
@given(first=st.text(min_size=1, max_size=20), second=st.text(min_size=1, max_size=20))
def test_any_two_texts_share_a_key_only_when_equal_up_to_ascii_case_and_trimming(first: str, second: str) -> None:
    for mapping in shipped():
        crm_key, acc_key = _keys(mapping, first, second)
        if crm_key is not None and acc_key is not None:
            assert (crm_key == acc_key) == (_unchanged_or_none(first) == _unchanged_or_none(second))


def test_the_german_sharp_s_is_not_a_double_s() -> None:
    for mapping in shipped():
        straße, strasse = _keys(mapping, "Straße@Example.com", "strasse@example.com")
        assert straße == ("straße@example.com",) and strasse == ("strasse@example.com",)
        assert _keys(mapping, " ANN@Example.COM ", "ann@example.com")[0] == ("ann@example.com",)


def test_ascii_lower_changes_a_to_z_alone_in_any_text() -> None:
    """ascii_lower's fast ways agree with the plain A-Z table on every code point, lone surrogates included."""
    table = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
    every = "".join(chr(n) for n in range(0x110000))
    assert ascii_lower(every) == every.translate(table)
    for text in ("Chloé.García@Example.COM", "\ud800\udc00Ä\udfffZ", "ÅngströmKELVIN", "ASCII@EXAMPLE.COM"):
        assert ascii_lower(text) == text.translate(table)
