"""Named value transforms: each turns a side's value into canonical form and, when it can, back again."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from typing import Any, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers

from syncd.mapping.values import CanonicalScalar, FieldScalar
from syncd.textkeys import ascii_lower

# ISO 4217 minor units for the currencies that differ from the usual two places.
_CURRENCY_PLACES: dict[str, int] = {
    "BHD": 3, "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "IQD": 3, "ISK": 0, "JOD": 3, "JPY": 0, "KMF": 0,
    "KRW": 0, "KWD": 3, "LYD": 3, "OMR": 3, "PYG": 0, "RWF": 0, "TND": 3, "UGX": 0, "UYI": 0, "VND": 0,
    "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
}


def currency_places(code: str | None) -> int:
    """Number of decimal places money in `code` is kept to (2 unless ISO 4217 says otherwise)."""
    return _CURRENCY_PLACES.get((code or "").strip().upper(), 2)


class TransformArgumentError(ValueError):
    """A transform was configured with arguments it does not accept."""


class TransformValueError(ValueError):
    """A record value cannot be converted by a transform (for example 'abc' as money)."""


@dataclass(frozen=True)
class TransformContext:
    """Per-record facts a transform may need: the record's currency, when the object declares one."""

    currency: str | None = None


class Transform(Protocol):
    """One conversion step between a side's representation and canonical form."""

    @property
    def name(self) -> str: ...

    @property
    def invertible(self) -> bool: ...

    def to_canonical(self, value: object, ctx: TransformContext) -> CanonicalScalar:
        """Convert a side's value (never None) into canonical form."""
        ...

    def to_side(self, value: CanonicalScalar) -> FieldScalar:
        """Convert a canonical value (never None) back; only called when `invertible`."""
        ...


Factory = Callable[[Mapping[str, Any]], Transform]


class TransformRegistry:
    """Transforms by name; mapping files refer to them, and Python code can register its own."""

    def __init__(self) -> None:
        self._factories: dict[str, tuple[Factory, frozenset[str]]] = {}

    def register(self, name: str, *, args: frozenset[str] = frozenset()) -> Callable[[Factory], Factory]:
        """Decorator: register `factory` under `name`, accepting the argument names in `args`."""

        def decorate(factory: Factory) -> Factory:
            self._factories[name] = (factory, args)
            return factory

        return decorate

    def names(self) -> list[str]:
        """Every registered transform name, sorted."""
        return sorted(self._factories)

    def build(self, name: str, args: Mapping[str, Any]) -> Transform:
        """Build a configured transform; raises KeyError for an unknown name, TransformArgumentError else."""
        if name not in self._factories:
            raise KeyError(name)
        factory, allowed = self._factories[name]
        unknown = sorted(set(args) - allowed)
        if unknown:
            accepted = ", ".join(sorted(allowed)) or "none"
            raise TransformArgumentError(
                f"transform {name!r} does not take argument(s) {', '.join(unknown)} (accepts: {accepted})"
            )
        return factory(args)


#: The registry mapping files use.
TRANSFORMS = TransformRegistry()


def _text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | Decimal | float):
        return str(value)
    raise TransformValueError(f"expected text, got {type(value).__name__}")


def _str_arg(args: Mapping[str, Any], key: str, default: str | None = None) -> str | None:
    value = args.get(key, default)
    if value is not None and not isinstance(value, str):
        raise TransformArgumentError(f"argument {key!r} must be a string")
    return value


def _choice_arg(args: Mapping[str, Any], key: str, choices: tuple[str, ...]) -> str:
    value = _str_arg(args, key, choices[0])
    if value not in choices:
        raise TransformArgumentError(f"argument {key!r} must be one of {', '.join(choices)}, not {value!r}")
    return value


@dataclass(frozen=True)
class TextCase:
    """Trim surrounding whitespace and optionally change case; writing back sends the canonical text."""

    name: str
    case: str = "keep"
    invertible: bool = True

    def to_canonical(self, value: object, ctx: TransformContext) -> CanonicalScalar:
        """Trimmed (and case-changed) text; empty text becomes None so '' and a missing value agree."""
        return self.fold(_text(value)) or None

    def fold(self, text: str) -> str:
        """`text` trimmed and case-changed ('' for blank text): the canonical form of text, None aside."""
        text = text.strip()
        if self.case == "keep":
            return text
        if self.case == "lower":
            return text.lower()
        if self.case == "ascii_lower":
            # E-mail: only A-Z, as the systems compare addresses; 'Straße' must not become another address.
            return ascii_lower(text)
        if self.case == "upper":
            return text.upper()
        return text

    def to_side(self, value: CanonicalScalar) -> FieldScalar:
        """Canonical text is already acceptable on every side."""
        return value


def _text_case(name: str, case: str) -> Factory:
    def build(args: Mapping[str, Any]) -> Transform:
        return TextCase(name, case)

    return build


for _name, _case in (("trim", "keep"), ("lower", "lower"), ("upper", "upper"), ("email", "ascii_lower")):
    TRANSFORMS.register(_name)(_text_case(_name, _case))


@dataclass(frozen=True)
class EmailDomain:
    """The domain part of an e-mail address; one-way, since an address cannot be rebuilt from it."""

    name: str = "email_domain"
    invertible: bool = False

    def to_canonical(self, value: object, ctx: TransformContext) -> CanonicalScalar:
        """Lower-cased domain after the last '@', or None when there is none."""
        text = _text(value).strip().lower()
        _, at, domain = text.rpartition("@")
        return domain or None if at else None

    def to_side(self, value: CanonicalScalar) -> FieldScalar:
        """Not invertible: validation keeps this transform off any field that writes back."""
        raise TransformValueError("email_domain cannot be inverted")


TRANSFORMS.register("email_domain")(lambda args: EmailDomain())


@lru_cache(maxsize=2_048)
def _e164(text: str, region: str) -> str:
    """E.164 form of a trimmed number read in `region`, or the text itself when it is not a possible number.

    Parsing is most of the cost of mapping a contact, and each number is read from both sides of a pair and
    again on every pass: cached per (text, region), which is all the answer depends on. The cache is sized
    for a few batches (a pair's two reads come close together), not for every number of a first sync:
    ~0.3 MB at most, full after 2,048 numbers, so a pass's peak does not grow with its size.
    """
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return text
    if not phonenumbers.is_possible_number(number):
        return text
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


@dataclass(frozen=True)
class Phone:
    """Phone numbers in E.164 (+14155550100); numbers that do not parse are kept as trimmed text."""

    region: str
    output: str
    name: str = "phone"
    invertible: bool = True

    def to_canonical(self, value: object, ctx: TransformContext) -> CanonicalScalar:
        """E.164 form of the number, read in `region` when it has no country code."""
        text = _text(value).strip()
        if not text:
            return None
        return _e164(text, self.region)

    def to_side(self, value: CanonicalScalar) -> FieldScalar:
        """E.164, or the international/national rendering of it, which parses back to the same E.164."""
        if self.output == "e164" or not isinstance(value, str) or not value.startswith("+"):
            return value
        try:
            number = phonenumbers.parse(value, None)
        except phonenumbers.NumberParseException:
            return value
        fmt = (
            phonenumbers.PhoneNumberFormat.INTERNATIONAL
            if self.output == "international"
            else phonenumbers.PhoneNumberFormat.NATIONAL
        )
        rendered = str(phonenumbers.format_number(number, fmt))
        # Some numbers render in a form that no longer parses as possible; E.164 is always safe to send.
        return rendered if self.to_canonical(rendered, TransformContext()) == value else value


@TRANSFORMS.register("phone", args=frozenset({"region", "output"}))
def _phone(args: Mapping[str, Any]) -> Transform:
    given = _str_arg(args, "region", "US") or "US"
    region = given.upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise TransformArgumentError(f"argument 'region' must be a two-letter region code, not {given!r}")
    # A national rendering drops the country code, so a foreign number would not parse back: one-way.
    output = _choice_arg(args, "output", ("e164", "international", "national"))
    return Phone(region=region, output=output, invertible=output != "national")


def _parse_zone(args: Mapping[str, Any]) -> tzinfo:
    name = _str_arg(args, "timezone", "UTC") or "UTC"
    if name == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise TransformArgumentError(f"argument 'timezone': unknown time zone {name!r}") from exc


def _check_format(fmt: str | None, sample: date | datetime) -> None:
    if fmt is None:
        return
    try:
        rendered = sample.strftime(fmt)
        if isinstance(sample, datetime):
            datetime.strptime(rendered, fmt)
        else:
            datetime.strptime(rendered, fmt).date()
    except ValueError as exc:
        raise TransformArgumentError(f"argument 'format' {fmt!r} does not read back what it writes") from exc


@dataclass(frozen=True)
class DateTransform:
    """Calendar dates: canonical `date`; sides may hold dates, datetimes or text in a given format."""

    fmt: str | None
    zone: tzinfo
    name: str = "date"
    invertible: bool = True

    def to_canonical(self, value: object, ctx: TransformContext) -> CanonicalScalar:
        """The date itself; datetimes are read in the configured time zone (a CRM may send a date as midnight UTC)."""
        if isinstance(value, datetime):
            return (value.astimezone(self.zone) if value.tzinfo else value).date()
        if isinstance(value, date):
            return value
        text = _text(value).strip()
        if not text:
            return None
        try:
            if self.fmt:
                return datetime.strptime(text, self.fmt).date()
            if len(text) > 10:
                moment = _parse_iso_instant(text)
                return (moment.astimezone(self.zone) if moment.tzinfo else moment).date()
            return date.fromisoformat(text)
        except ValueError as exc:
            raise TransformValueError(f"not a date: {text!r}") from exc

    def to_side(self, value: CanonicalScalar) -> FieldScalar:
        """A `date`, or text in the configured format."""
        if self.fmt and isinstance(value, date):
            return value.strftime(self.fmt)
        return value


@TRANSFORMS.register("date", args=frozenset({"format", "timezone"}))
def _date(args: Mapping[str, Any]) -> Transform:
    fmt = _str_arg(args, "format")
    _check_format(fmt, date(2024, 2, 29))
    return DateTransform(fmt=fmt, zone=_parse_zone(args))


@dataclass(frozen=True)
class DatetimeTransform:
    """Instants: canonical is an aware UTC datetime cut to the configured precision (s or ms)."""

    fmt: str | None
    zone: tzinfo
    precision: str
    name: str = "datetime"
    invertible: bool = True

    def to_canonical(self, value: object, ctx: TransformContext) -> CanonicalScalar:
        """UTC datetime; naive values are read in the configured time zone."""
        if isinstance(value, datetime):
            moment = value
        elif isinstance(value, date):
            moment = datetime(value.year, value.month, value.day)
        elif isinstance(value, int) and not isinstance(value, bool):
            # Epoch milliseconds, as CRM webhooks and change feeds send them.
            moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=value)
        else:
            text = _text(value).strip()
            if not text:
                return None
            try:
                moment = datetime.strptime(text, self.fmt) if self.fmt else _parse_iso_instant(text)
            except ValueError as exc:
                raise TransformValueError(f"not a date-time: {text!r}") from exc
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self.zone)
        moment = moment.astimezone(UTC)
        micro = moment.microsecond - moment.microsecond % 1000 if self.precision == "ms" else 0
        return moment.replace(microsecond=micro)

    def to_side(self, value: CanonicalScalar) -> FieldScalar:
        """An aware datetime, or text in the configured format rendered in the configured zone."""
        if self.fmt and isinstance(value, datetime):
            return value.astimezone(self.zone).strftime(self.fmt)
        return value


def _parse_iso_instant(text: str) -> datetime:
    # Some APIs write offsets without a colon (2013-11-18T02:02:51-0800); fromisoformat in 3.11 needs one.
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    elif len(text) > 5 and text[-5] in "+-" and text[-4:].isdigit() and "T" in text:
        text = text[:-2] + ":" + text[-2:]
    return datetime.fromisoformat(text)


@TRANSFORMS.register("datetime", args=frozenset({"format", "timezone", "precision"}))
def _datetime(args: Mapping[str, Any]) -> Transform:
    fmt = _str_arg(args, "format")
    _check_format(fmt, datetime(2024, 2, 29, 13, 45, 59, tzinfo=UTC))
    precision = _choice_arg(args, "precision", ("s", "ms"))
    return DatetimeTransform(fmt=fmt, zone=_parse_zone(args), precision=precision)


def _to_decimal(value: object) -> Decimal:
    if isinstance(value, bool):
        raise TransformValueError("expected a number, got a boolean")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int | float):
        # str() of a float is its shortest repr, so 0.1 stays 0.1 instead of its binary expansion.
        number = Decimal(str(value))
    else:
        text = _text(value).strip().replace(",", "")
        try:
            number = Decimal(text)
        except InvalidOperation as exc:
            raise TransformValueError(f"not a number: {text!r}") from exc
    if not number.is_finite():
        raise TransformValueError(f"not a finite number: {value!r}")
    return number


def _plain(number: Decimal) -> Decimal:
    """Drop trailing zeros without switching to exponent form (Decimal('1E+2') stays 100)."""
    if number == number.to_integral_value():
        return number.quantize(Decimal(1))
    return number.normalize()


@dataclass(frozen=True)
class Money:
    """Decimal money quantized to the currency's minor units, so '10', 10 and '10.00' are equal."""

    currency: str | None
    output: str
    name: str = "money"
    invertible: bool = True

    def to_canonical(self, value: object, ctx: TransformContext) -> CanonicalScalar:
        """Amount as Decimal rounded half-up to the fixed currency's, else the record's, places."""
        if isinstance(value, str) and not value.strip():
            return None
        places = currency_places(self.currency or ctx.currency)
        return _to_decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)

    def to_side(self, value: CanonicalScalar) -> FieldScalar:
        """A Decimal, or its plain text ('10.00') for systems that hold amounts as strings."""
        return str(value) if self.output == "string" and isinstance(value, Decimal) else value


@TRANSFORMS.register("money", args=frozenset({"currency", "output"}))
def _money(args: Mapping[str, Any]) -> Transform:
    currency = _str_arg(args, "currency")
    if currency is not None and (len(currency) != 3 or not currency.isalpha()):
        raise TransformArgumentError(f"argument 'currency' must be a 3-letter ISO code, not {currency!r}")
    output = _choice_arg(args, "output", ("decimal", "string"))
    return Money(currency=currency.upper() if currency else None, output=output)


@dataclass(frozen=True)
class Number:
    """Plain decimal numbers (quantities, rates): fixed places if given, else trailing zeros dropped."""

    places: int | None
    output: str
    name: str = "decimal"
    invertible: bool = True

    def to_canonical(self, value: object, ctx: TransformContext) -> CanonicalScalar:
        """Decimal with consistent scale, so 2, '2' and '2.000' compare and store alike."""
        if isinstance(value, str) and not value.strip():
            return None
        number = _to_decimal(value)
        if self.places is not None:
            return number.quantize(Decimal(1).scaleb(-self.places), rounding=ROUND_HALF_UP)
        return _plain(number)

    def to_side(self, value: CanonicalScalar) -> FieldScalar:
        """A Decimal, its text, or an int when the value is whole and `output = "int"`."""
        if not isinstance(value, Decimal):
            return value
        if self.output == "string":
            return str(value)
        if self.output == "int" and value == value.to_integral_value():
            return int(value)
        return value


@TRANSFORMS.register("decimal", args=frozenset({"places", "output"}))
def _decimal(args: Mapping[str, Any]) -> Transform:
    places = args.get("places")
    whole = isinstance(places, int) and not isinstance(places, bool)
    if places is not None and (not whole or not 0 <= places <= 12):
        raise TransformArgumentError("argument 'places' must be an integer from 0 to 12")
    return Number(places=places, output=_choice_arg(args, "output", ("decimal", "string", "int")))


_TRUE = {"true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off"}


@dataclass(frozen=True)
class Boolean:
    """Booleans from bools, 0/1 and the usual words; written back as bool or 'true'/'false'."""

    output: str
    name: str = "bool"
    invertible: bool = True

    def to_canonical(self, value: object, ctx: TransformContext) -> CanonicalScalar:
        """True or False; anything else is an error rather than a guess."""
        if isinstance(value, bool):
            return value
        text = _text(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        if not text:
            return None
        raise TransformValueError(f"not a boolean: {value!r}")

    def to_side(self, value: CanonicalScalar) -> FieldScalar:
        """A bool, or 'true'/'false' text."""
        if self.output == "string" and isinstance(value, bool):
            return "true" if value else "false"
        return value


@TRANSFORMS.register("bool", args=frozenset({"output"}))
def _bool(args: Mapping[str, Any]) -> Transform:
    return Boolean(output=_choice_arg(args, "output", ("bool", "string")))


@dataclass(frozen=True)
class ValueMap:
    """Translate a vocabulary (deal stage → invoice status); invertible only if one-to-one with no default."""

    table: Mapping[str, CanonicalScalar]
    default: CanonicalScalar
    has_default: bool
    reverse: Mapping[CanonicalScalar, str] = field(default_factory=dict)
    name: str = "value_map"

    @property
    def invertible(self) -> bool:
        """A default or two keys with one value leave the way back ambiguous."""
        return not self.has_default and len(self.reverse) == len(self.table)

    def to_canonical(self, value: object, ctx: TransformContext) -> CanonicalScalar:
        """The mapped value; an unmapped value is an error unless a default is configured."""
        key = _text(value).strip()
        if key in self.table:
            return self.table[key]
        if self.has_default:
            return self.default
        raise TransformValueError(f"no value_map entry for {key!r}")

    def to_side(self, value: CanonicalScalar) -> FieldScalar:
        """The one key that maps to `value`."""
        if value in self.reverse:
            return self.reverse[value]
        raise TransformValueError(f"no value_map entry maps to {value!r}")


@TRANSFORMS.register("value_map", args=frozenset({"map", "default"}))
def _value_map(args: Mapping[str, Any]) -> Transform:
    table = args.get("map")
    if not isinstance(table, Mapping) or not table:
        raise TransformArgumentError("argument 'map' must be a non-empty table of value = value")
    for key, mapped in table.items():
        if not isinstance(mapped, str | int | bool) or isinstance(mapped, float):
            raise TransformArgumentError(f"argument 'map': {key!r} must map to text, an integer or a boolean")
    default = args.get("default")
    if default is not None and not isinstance(default, str | int | bool):
        raise TransformArgumentError("argument 'default' must be text, integer or boolean")
    reverse = {mapped: key for key, mapped in table.items()}
    return ValueMap(table=dict(table), default=default, has_default="default" in args, reverse=reverse)
