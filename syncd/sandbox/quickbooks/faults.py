"""QuickBooks Online Fault answers: `{"Fault": {"Error": [{"Message", "Detail", "code", "element"}], "type"},
"time"}`, with the codes the simulator gives and the HTTP status each comes with."""

from __future__ import annotations

from typing import Any

# Codes as QBO documents them (developer.intuit.com, error codes).
AUTHENTICATION_FAILED = "3200"  # 401, AuthenticationFault
THROTTLE_EXCEEDED = "3001"  # 429: 500/min, 10/s, 40 batch/min per company
OBJECT_NOT_FOUND = "610"  # "Object Not Found": a deleted or unknown Id
UNSUPPORTED_PROPERTY = "2010"  # "Request has invalid or unsupported property"
REQUIRED_MISSING = "2020"  # "Required param missing, need to supply the required value for the API"
INVALID_REFERENCE = "2500"  # "Invalid Reference Id"
BUSINESS_RULE = "6000"  # "A business validation error has occurred while processing your request"
DUPLICATE_NAME = "6240"  # "Duplicate Name Exists Error"
STALE_OBJECT = "5010"  # "Stale Object Error": the SyncToken sent is not the current one
QUERY_PARSE = "4000"  # QueryParserError
INVALID_QUERY = "4001"  # "Invalid query": unknown entity or property
INTERNAL = "10000"  # "An application error has occurred while processing your request"


class QboFault(Exception):
    """A refusal as QBO answers it; `body()` is the Fault object, `status` the HTTP status it comes with."""

    def __init__(self, code: str, message: str, detail: str = "", *, status: int = 400,
                 kind: str = "ValidationFault", element: str | None = None) -> None:
        self.code = code
        self.message = message
        self.detail = detail
        self.status = status
        self.kind = kind
        self.element = element
        super().__init__(f"{code} {message}: {detail}")

    def fault(self) -> dict[str, Any]:
        """The Fault object (as it also appears inside a batch item)."""
        error: dict[str, Any] = {"Message": self.message, "Detail": self.detail, "code": self.code}
        if self.element is not None:
            error["element"] = self.element
        return {"Error": [error], "type": self.kind}


def not_found(entity: str, record_id: str) -> QboFault:
    """610 for an Id that does not exist (or was deleted)."""
    return QboFault(OBJECT_NOT_FOUND, "Object Not Found",
                    f"Object Not Found : Something you're trying to use has been made inactive or deleted. "
                    f"{entity} Id={record_id}")  # fmt: skip


def stale(entity: str, record_id: str) -> QboFault:
    """5010 for a SyncToken that is not the record's current one."""
    return QboFault(STALE_OBJECT, "Stale Object Error",
                    f"Stale Object Error : You and another user were working on the same thing. "
                    f"{entity} Id={record_id}", element="SyncToken")  # fmt: skip


def unsupported(prop: str) -> QboFault:
    """2010 for a property the entity does not have or that cannot be written."""
    return QboFault(UNSUPPORTED_PROPERTY, "Request has invalid or unsupported property",
                    f"Property Name:{prop} specified is unsupported or invalid", element=prop)  # fmt: skip


def required(prop: str) -> QboFault:
    """2020 for a missing required property."""
    return QboFault(REQUIRED_MISSING, "Required param missing, need to supply the required value for the API",
                    f"Required parameter {prop} is missing in the request", element=prop)  # fmt: skip


def business(detail: str) -> QboFault:
    """6000 for a request against a business rule (overpaying an invoice, voiding a paid one)."""
    return QboFault(BUSINESS_RULE, "A business validation error has occurred while processing your request",
                    f"Business Validation Error: {detail}")  # fmt: skip
