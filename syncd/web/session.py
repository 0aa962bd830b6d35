"""The review pages' login session: a cookie signed with a key derived from the admin token (HMAC-SHA256), and the
CSRF token of its forms; changing the token signs everyone out."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from aiohttp import web

COOKIE = "syncd_review"
#: How long a login lasts; a reviewer signs in again after it.
LIFETIME_S = 12 * 3600
_MAX_NAME = 80


@dataclass(frozen=True)
class Session:
    """A signed-in reviewer: who they said they are (kept in the resolution history) and their forms' token."""

    who: str
    csrf: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionSigner:
    """Makes and checks session cookies and CSRF tokens with a key derived from the admin token."""

    def __init__(self, admin_token: str) -> None:
        # A key of its own, so that a cookie (which a browser shows) never reveals anything usable as a token.
        self._key = hmac.new(admin_token.encode(), b"syncd review session v1", hashlib.sha256).digest()

    def _sign(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()

    def issue(self, response: web.StreamResponse, who: str, *, secure: bool) -> Session:
        """Sign `who` in: set the session cookie on `response` (HttpOnly, SameSite=Strict)."""
        name = " ".join(who.split())[:_MAX_NAME]
        nonce = secrets.token_hex(16)
        body = _b64(json.dumps({"who": name, "iat": int(time.time()), "nonce": nonce}).encode())
        response.set_cookie(
            COOKIE, f"{body}.{self._sign(body)}", max_age=LIFETIME_S, httponly=True, samesite="Strict",
            secure=secure, path="/review",
        )
        return Session(name, self._csrf(nonce))

    def read(self, request: web.Request) -> Session | None:
        """The session the request's cookie carries, if it is genuine and not expired."""
        cookie = request.cookies.get(COOKIE, "")
        body, _, signature = cookie.partition(".")
        if not body or not hmac.compare_digest(signature.encode(), self._sign(body).encode()):
            return None
        try:
            data = json.loads(_unb64(body))
            who, issued, nonce = str(data["who"]), int(data["iat"]), str(data["nonce"])
        except (ValueError, KeyError, TypeError):
            return None
        if not 0 <= time.time() - issued <= LIFETIME_S:
            return None
        return Session(who, self._csrf(nonce))

    def _csrf(self, nonce: str) -> str:
        """The CSRF token of one session: bound to it, so a token from another session is refused."""
        return self._sign(f"csrf:{nonce}")

    @staticmethod
    def end(response: web.StreamResponse) -> None:
        """Sign out: drop the cookie."""
        response.del_cookie(COOKIE, path="/review")
