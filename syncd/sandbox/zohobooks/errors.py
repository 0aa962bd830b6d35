"""Zoho Books error answers: `{"code": n, "message": "..."}` with the HTTP status Zoho pairs with it.

Codes documented by Zoho (zoho.com/books/api/v3/errors): 0 success, 1000 "Internal error", 1002 "<Entity> does
not exist.". Code 4 "Invalid value passed for ..." and 57 (not authorised) are widely reported by API users.
The others below are this simulator's choices for cases Zoho does not document publicly (unverified); they
live in this one table so that a correction is one line.
"""

from __future__ import annotations

from aiohttp import web

from syncd.sandbox.zohobooks.money import dumps

INTERNAL_ERROR = 1000
DOES_NOT_EXIST = 1002
INVALID_VALUE = 4
MANDATORY_MISSING = 11  # unverified
NOT_AUTHORIZED = 57
ORGANIZATION_REQUIRED = 6042  # unverified
ORGANIZATION_UNKNOWN = 6041  # "This user is not associated with the CompanyID/CompanyName"
DUPLICATE_VALUE = 3062  # unverified: e.g. a contact name or unique custom field value already used
INVALID_STATE = 1037  # unverified: an operation the record's status forbids
OVER_APPLIED = 24016  # unverified: more applied to an invoice than its balance or than the payment
RATE_LIMITED = 44  # unverified (README: the JSON code with 429 is unverified)
DAILY_LIMIT = 45  # unverified
HAS_TRANSACTIONS = 1040  # unverified: a contact with invoices or payments cannot be deleted
URL_NOT_FOUND = 5  # "Invalid URL Passed"


class ZohoError(Exception):
    """A Books API failure that becomes a `{code, message}` answer with `status`."""

    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def response(self) -> web.Response:
        """The HTTP answer for this error."""
        return error_response(self.status, self.code, self.message)


def error_response(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    """A Zoho-shaped error answer."""
    return web.Response(
        status=status,
        text=dumps({"code": code, "message": message}),
        content_type="application/json",
        headers=headers,
    )


def not_found(entity: str) -> ZohoError:
    """`<Entity> does not exist.` (HTTP 404, code 1002), e.g. for a GET of a deleted invoice."""
    return ZohoError(404, DOES_NOT_EXIST, f"{entity} does not exist.")


def invalid(field: str) -> ZohoError:
    """`Invalid value passed for <field>` (HTTP 400, code 4)."""
    return ZohoError(400, INVALID_VALUE, f"Invalid value passed for {field}")


def mandatory(field: str) -> ZohoError:
    """A required field is missing (HTTP 400)."""
    return ZohoError(400, MANDATORY_MISSING, f"{field} is mandatory.")


def bad_state(message: str) -> ZohoError:
    """An operation the record's current status does not allow (HTTP 400)."""
    return ZohoError(400, INVALID_STATE, message)
