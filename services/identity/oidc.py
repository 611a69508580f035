"""OpenID Connect relying party: authorization code flow with PKCE, state and nonce.

Authlib builds the authorization URL and redeems the code (client authentication,
PKCE verifier); joserfc checks the ID token's signature against the provider's
JWKS and its claims (issuer, audience, expiry, issued-at, nonce). Nothing here
parses or verifies a JWT by hand.

Providers are configured by issuer URL, client ID and secret; everything else
comes from the issuer's discovery document.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import requests
from authlib.common.security import is_secure_transport
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

from services.identity.settings import OidcProviderConfig
from shared.errors import Unauthorized, Unavailable

log = logging.getLogger(__name__)

# Asymmetric algorithms only: "none" and client-secret HMACs are refused.
ALLOWED_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384")
METADATA_TTL = 3600.0
JWKS_REFRESH_MIN_INTERVAL = 30.0
CLOCK_LEEWAY = 60


class ExternalSignInFailed(Unauthorized):
    def __init__(self, reason: str) -> None:
        # The reason is for the log and the code; the resident sees a plain sentence.
        super().__init__(
            "Sign-in with the external provider did not succeed. Try again.",
            code="external_sign_in_failed",
            extra={"reason": reason},
        )


class ProviderUnavailable(Unavailable):
    def __init__(self, provider: str) -> None:
        super().__init__(
            f"The sign-in provider {provider} is not answering. Try again later.",
            code="provider_unavailable",
            extra={"provider": provider},
        )


class OidcClient:
    """One configured provider."""

    def __init__(self, config: OidcProviderConfig, *, timeout: float = 5.0) -> None:
        self.config = config
        self.timeout = timeout
        self._lock = threading.Lock()
        self._metadata: dict[str, Any] | None = None
        self._metadata_at = 0.0
        self._jwks: KeySet | None = None
        self._jwks_at = 0.0
        self._forced_at = float("-inf")

    @property
    def key(self) -> str:
        return self.config.key

    # -- discovery ------------------------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        if self._metadata is not None and time.monotonic() - self._metadata_at < METADATA_TTL:
            return self._metadata
        url = self.config.issuer.rstrip("/") + "/.well-known/openid-configuration"
        doc = self._get_json(url)
        if doc.get("issuer") != self.config.issuer:
            # OIDC Discovery 4.3: the document must name exactly the issuer we asked.
            log.error(
                "%s: discovery issuer %r is not the configured one", self.key, doc.get("issuer")
            )
            raise ExternalSignInFailed("issuer_mismatch")
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            value = doc.get(name)
            if not isinstance(value, str) or not is_secure_transport(value):
                log.error("%s: discovery %s is missing or not https", self.key, name)
                raise ExternalSignInFailed("bad_discovery")
        self._metadata, self._metadata_at = doc, time.monotonic()
        return doc

    def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = requests.get(url, timeout=self.timeout)
            response.raise_for_status()
            data = response.json()
        except (requests.RequestException, ValueError) as exc:
            log.warning("%s: GET %s failed: %s", self.key, url, type(exc).__name__)
            raise ProviderUnavailable(self.config.name) from None
        if not isinstance(data, dict):
            raise ExternalSignInFailed("bad_document")
        return data

    def _keys(self, *, refresh: bool = False) -> KeySet:
        with self._lock:
            now = time.monotonic()
            stale = self._jwks is None or now - self._jwks_at > METADATA_TTL
            # An unknown key ID refetches, but not more often than this: a stream of forged
            # tokens must not turn into a stream of requests to the provider.
            forced = refresh and now - self._forced_at > JWKS_REFRESH_MIN_INTERVAL
            if stale or forced:
                if forced:
                    self._forced_at = now
                data = self._get_json(self.metadata()["jwks_uri"])
                try:
                    self._jwks = KeySet.import_key_set(data)  # type: ignore[arg-type]
                except (JoseError, ValueError, KeyError, TypeError):
                    raise ExternalSignInFailed("bad_jwks") from None
                self._jwks_at = time.monotonic()
            return self._jwks  # type: ignore[return-value]

    # -- the flow -------------------------------------------------------------------------

    def _session(self, redirect_uri: str) -> OAuth2Session:
        methods = self.metadata().get("token_endpoint_auth_methods_supported") or [
            "client_secret_basic"
        ]
        method = "client_secret_basic" if "client_secret_basic" in methods else "client_secret_post"
        return OAuth2Session(
            client_id=self.config.client_id,
            client_secret=self.config.client_secret,
            scope=self.config.scopes,
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            token_endpoint_auth_method=method,
        )

    def authorization_url(
        self, *, redirect_uri: str, state: str, nonce: str, code_verifier: str
    ) -> str:
        with self._session(redirect_uri) as session:
            url, _ = session.create_authorization_url(
                self.metadata()["authorization_endpoint"],
                state=state,
                nonce=nonce,
                code_verifier=code_verifier,
            )
        return url

    def redeem(self, *, code: str, redirect_uri: str, code_verifier: str, nonce: str) -> dict:
        """Exchange the code for tokens and return the ID token's checked claims."""
        try:
            with self._session(redirect_uri) as session:
                token = session.fetch_token(
                    self.metadata()["token_endpoint"],
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=code_verifier,
                    timeout=self.timeout,
                )
        except requests.RequestException as exc:
            log.warning("%s: token request failed: %s", self.key, type(exc).__name__)
            raise ProviderUnavailable(self.config.name) from None
        except Exception as exc:  # OAuth error answers (invalid_grant, ...) from Authlib
            log.warning(
                "%s: the provider refused the code: %s", self.key, getattr(exc, "error", exc)
            )
            raise ExternalSignInFailed("code_refused") from None
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise ExternalSignInFailed("no_id_token")
        return self.check_id_token(id_token, nonce=nonce)

    def check_id_token(self, id_token: str, *, nonce: str, now: int | None = None) -> dict:
        algorithms = [
            a
            for a in self.metadata().get("id_token_signing_alg_values_supported", ["RS256"])
            if a in ALLOWED_ALGORITHMS
        ] or ["RS256"]
        try:
            try:
                decoded = jwt.decode(id_token, self._keys(), algorithms=algorithms)
            except InvalidKeyIdError:
                # The provider rotated its keys: fetch them again (at most every 30 s).
                decoded = jwt.decode(id_token, self._keys(refresh=True), algorithms=algorithms)
            registry = jwt.JWTClaimsRegistry(
                now=now,
                leeway=CLOCK_LEEWAY,
                iss={"essential": True, "value": self.config.issuer},
                aud={"essential": True, "value": self.config.client_id},
                sub={"essential": True},
                exp={"essential": True},
                iat={"essential": True},
                nonce={"essential": True, "value": nonce},
            )
            registry.validate(decoded.claims)
        except JoseError as exc:
            log.warning("%s: ID token refused: %s %s", self.key, exc.error, exc.description or "")
            claim = getattr(exc, "claim", None)
            raise ExternalSignInFailed(
                f"id_token_{exc.error}" + (f"_{claim}" if claim and claim != exc.error else "")
            ) from None
        except ValueError as exc:
            log.warning("%s: ID token refused: %s", self.key, exc)
            raise ExternalSignInFailed("id_token_invalid") from None
        claims = decoded.claims
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.config.client_id:
            raise ExternalSignInFailed("id_token_azp")
        return claims


def email_is_verified(claims: dict) -> bool:
    """Some providers send the boolean as a string."""
    value = claims.get("email_verified")
    return value is True or (isinstance(value, str) and value.lower() == "true")
