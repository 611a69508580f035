"""One request as the route handlers see it: who is asking, for what, with which services."""

from __future__ import annotations

import datetime as dt
from typing import Any

from werkzeug.wrappers import Request

from services.gateway import security
from services.gateway.problems import Problem
from services.gateway.routing import UNSAFE, Route
from shared.errors import MuniportalError


class Ctx:
    def __init__(self, runtime: Any, request: Request, services: Any, request_id: str) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.request = request
        self.services = services
        self.request_id = request_id
        self.client_ip = security.client_ip(request.environ, self.settings.trust_forwarded_for)
        self.user_agent = (request.environ.get("HTTP_USER_AGENT") or "")[:300] or None
        self.body: Any = None
        self.query: dict[str, Any] = {}
        self.auth: dict[str, Any] | None = None
        self.token: str | None = None
        self.session_from_cookie = False
        self.guest: dict[str, Any] | None = None
        self.guest_from_cookie = False
        self.cookies: list[dict[str, Any]] = []

    # -- credentials ---------------------------------------------------------------------

    def cookie(self, name: str) -> str | None:
        # MultiDict.get builds (and drops) an exception per missing key; `in` does not.
        if "HTTP_COOKIE" not in self.request.environ:
            return None  # an API client: nothing to parse
        cookies = self.request.cookies
        return cookies[name] if name in cookies else None

    @property
    def user_id(self) -> str:
        if self.auth is None:
            raise Problem(401, "Sign in to continue.", code="not_signed_in")
        return self.auth["user_id"]

    def authorize(self, route: Route) -> None:
        """Resolve the session (and guest token); enforce the route's auth and CSRF."""
        if route.auth == "none":
            return
        try:
            self._resolve_session()
        except MuniportalError as exc:
            # Public pages (announcements) still answer while identity is down.
            if route.auth != "optional" or exc.kind != "unavailable":
                raise
        if route.auth == "cart":
            self.resolve_guest()
        if route.auth == "user" and self.auth is None:
            raise Problem(401, "Sign in to continue.", code="not_signed_in")
        if self.request.method in UNSAFE:
            self._check_csrf()

    def _resolve_session(self) -> None:
        header = self.request.environ.get("HTTP_AUTHORIZATION") or ""
        token = None
        if header[:7].lower() == "bearer ":
            token = header[7:].strip()
            if not token:
                raise Problem(401, "The bearer token is empty.", code="session_invalid")
        else:
            token = self.cookie(security.SESSION_COOKIE) or None
            self.session_from_cookie = token is not None
        if not token:
            return
        key = security.token_key(token)
        try:
            auth = self.runtime.sessions.get_or_load(
                key, lambda: self.services.identity.authenticate(token)
            )
        except MuniportalError as exc:
            if exc.kind != "unauthorized":
                raise
            if self.session_from_cookie:
                self.clear_session_cookies()
                self.session_from_cookie = False
                return  # a stale cookie is "not signed in", not an error
            raise
        self.auth = auth
        self.token = token
        self.services.set_context(actor=f"user:{auth['user_id']}")

    def resolve_guest(self) -> None:
        """Read the quick-pay guest token (cookie or X-Guest-Token header), if any."""
        token = self.request.environ.get("HTTP_X_GUEST_TOKEN")
        if not token:
            token = self.cookie(security.GUEST_COOKIE)
            self.guest_from_cookie = token is not None
        self.guest = security.read_guest(self.settings.secret, token)
        if self.guest is None:
            self.guest_from_cookie = False
        elif self.auth is None:
            self.services.set_context(actor=f"guest:{self.guest['g']}")

    def _check_csrf(self) -> None:
        # The credential the request acts with: the session when signed in (a guest
        # cookie beside it only adds the accounts looked up), else the guest token.
        if self.token and not self.session_from_cookie:
            return  # a bearer token: a browser never sends one by itself
        if self.session_from_cookie:
            credential = self.token
        elif self.guest_from_cookie:
            credential = self.cookie(security.GUEST_COOKIE)
        else:
            return  # bearer or guest header: no ambient credential to forge
        presented = self.request.environ.get("HTTP_X_CSRF_TOKEN")
        if not credential or not security.csrf_ok(self.settings.secret, credential, presented):
            raise Problem(
                403,
                "The X-CSRF-Token header is missing or does not match this session.",
                code="csrf_failed",
            )

    # -- cart owner ----------------------------------------------------------------------

    def owner(self, required: bool = True) -> str | None:
        if self.auth is not None:
            return f"user:{self.auth['user_id']}"
        if self.guest is not None:
            return f"guest:{self.guest['g']}"
        if required:
            raise Problem(
                401,
                "Sign in, or look up an account with quick pay first.",
                code="not_signed_in",
            )
        return None

    def set_guest(self, guest: dict[str, Any]) -> str:
        token = security.sign_guest(self.settings.secret, guest)
        self.guest = guest
        self._cookie(security.GUEST_COOKIE, token, max_age=3600)
        self._cookie(
            security.CSRF_COOKIE,
            security.csrf_token(self.settings.secret, token),
            http_only=False,
            max_age=3600,
        )
        return token

    # -- cookies -------------------------------------------------------------------------

    def _cookie(
        self, key: str, value: str, *, http_only: bool = True, max_age: int | None = None
    ) -> None:
        self.cookies.append(
            {
                "key": key,
                "value": value,
                "max_age": max_age,
                "httponly": http_only,
                "secure": self.settings.env != "development",
                "samesite": "Lax",
                "path": "/",
            }
        )

    def set_session_cookies(self, token: str, expires_at: str | None, remember_me: bool) -> None:
        max_age = None
        if remember_me and expires_at:
            try:
                until = dt.datetime.fromisoformat(expires_at)
                max_age = max(0, int((until - dt.datetime.now(dt.UTC)).total_seconds()))
            except (TypeError, ValueError):
                max_age = None
        csrf = security.csrf_token(self.settings.secret, token)
        self._cookie(security.SESSION_COOKIE, token, max_age=max_age)
        self._cookie(security.CSRF_COOKIE, csrf, http_only=False, max_age=max_age)

    def clear_session_cookies(self, guest_too: bool = False) -> None:
        self._cookie(security.SESSION_COOKIE, "", max_age=0)
        self._cookie(security.CSRF_COOKIE, "", http_only=False, max_age=0)
        if guest_too:
            self._cookie(security.GUEST_COOKIE, "", max_age=0)

    def csrf_token(self) -> str | None:
        return security.csrf_token(self.settings.secret, self.token) if self.token else None

    # -- access and cached reads ---------------------------------------------------------

    def guest_accounts(self) -> list[str]:
        """The accounts this browser looked up with quick pay."""
        return list(self.guest["a"]) if self.guest is not None else []

    def accessible(self) -> dict[str, list[str]]:
        user = self.user_id
        return self.runtime.users.get(
            f"u:{user}", "accessible", lambda: self.services.accounts.accessible(user)
        )

    def require_account(self, account_number: str) -> str:
        """The normalized account number, if this user (or guest) may see it; else 404."""
        number = normalize(account_number)
        if number in self.guest_accounts():
            return number
        if self.auth is None:
            raise Problem(401, "Sign in to continue.", code="not_signed_in")
        if number not in self.accessible().get("accounts", []):
            raise Problem(
                404,
                "No account with this number is linked to your user ID.",
                code="account_not_linked",
            )
        return number

    def require_customer(self, customer_id: str) -> str:
        number = normalize(customer_id)
        access = self.accessible()
        if number not in access.get("customers", []):
            raise Problem(
                404,
                "No customer with this ID is linked to your user ID.",
                code="customer_not_linked",
            )
        return number

    def account_bills(self, account_number: str, status: str) -> dict[str, Any]:
        return self.runtime.cache.get(
            f"a:{account_number}",
            ("bills", status),
            lambda: self.services.billing.account_bills(account_number, status),
        )


def normalize(number: Any) -> str:
    """Account numbers, customer IDs and bill numbers as the services store them."""
    text = str(number).strip()
    stripped = text.lstrip("0")
    return stripped or ("0" if text else text)
