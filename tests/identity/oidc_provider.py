"""A real OpenID Connect provider for the tests, built on Authlib's server components.

    python -m tests.identity.oidc_provider --port 9400 --client portal:s3cret [--client ...]

It serves discovery, JWKS, an authorization endpoint (POST ``sub`` to sign a
test user in), a token endpoint that requires PKCE (S256) and issues RS256 ID
tokens with the nonce, plus two test-only endpoints:

* ``PUT /users/<sub>`` sets a user's claims (email, email_verified, name...);
* ``POST /_control`` with ``{"tamper": ...}`` spoils the next ID token in one way
  (``nonce``, ``aud``, ``iss``, ``expired``, ``bad_signature``, ``unknown_kid``)
  or rotates the signing key of the client that redeems the next code
  (``rotate``), so the tests can show the relying party refuses what it must
  and follows key rotation. Each client has its own signing key, so rotating
  one client's key leaves the others' tokens as they were.
"""

from __future__ import annotations

import argparse
import dataclasses
import html
import json
import secrets
import threading
import time
from typing import Any

from authlib.oauth2 import AuthorizationServer, OAuth2Request
from authlib.oauth2.rfc6749 import (
    AuthorizationCodeMixin,
    ClientMixin,
    InvalidRequestError,
    JsonRequest,
)
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core.grants import OpenIDCode
from joserfc.jwk import KeySet, RSAKey
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

SCOPES = ["openid", "email", "profile"]


@dataclasses.dataclass
class Client(ClientMixin):
    client_id: str
    client_secret: str

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        return None

    def get_allowed_scope(self, scope: str) -> str:
        return " ".join(s for s in (scope or "").split() if s in SCOPES)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        # Test clients may return anywhere on the loopback or on example domains.
        return redirect_uri.startswith(("http://127.0.0.1", "http://localhost", "https://"))

    def check_client_secret(self, client_secret: str) -> bool:
        return secrets.compare_digest(client_secret, self.client_secret)

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclasses.dataclass
class Code(AuthorizationCodeMixin):
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    sub: str
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> None:
        return None

    def get_amr(self) -> None:
        return None


class State:
    """Everything the provider remembers (in memory: it lives as long as the test)."""

    def __init__(self, issuer: str, clients: list[Client]) -> None:
        self.issuer = issuer
        self.clients = {c.client_id: c for c in clients}
        self.keys = {c.client_id: self._new_key(f"k{i}") for i, c in enumerate(clients, 1)}
        self.published = list(self.keys.values())
        self.users: dict[str, dict[str, Any]] = {}
        self.codes: dict[str, Code] = {}
        self.tamper: str | None = None
        self.tokens_issued = 0
        self.lock = threading.Lock()

    @staticmethod
    def _new_key(kid: str) -> RSAKey:
        return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})

    def take_tamper(self) -> str | None:
        with self.lock:
            tamper, self.tamper = self.tamper, None
        return tamper

    def jwks(self) -> dict[str, Any]:
        return KeySet(self.published).as_dict(private=False)


class PkceRequired(CodeChallenge):
    """Refuse authorization requests without an S256 code challenge."""

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge") or data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("PKCE with S256 is required")
        super().validate_code_challenge(grant, redirect_uri)


class WerkzeugRequest(OAuth2Request):
    def __init__(self, request: Request) -> None:
        super().__init__(request.method, request.url, headers=request.headers)
        self._request = request
        self.payload = BasicOAuth2Payload({**request.args.to_dict(), **request.form.to_dict()})

    @property
    def args(self) -> Any:
        return self._request.args

    @property
    def form(self) -> Any:
        return self._request.form


def build_server(st: State) -> AuthorizationServer:
    class CodeGrant(AuthorizationCodeGrant):
        TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

        def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
            data = request.payload.data
            st.codes[code] = Code(
                code=code,
                client_id=request.client.get_client_id(),
                redirect_uri=data.get("redirect_uri"),
                scope=request.payload.scope or "",
                sub=request.user["sub"],
                nonce=data.get("nonce"),
                code_challenge=data.get("code_challenge"),
                code_challenge_method=data.get("code_challenge_method"),
                auth_time=int(time.time()),
            )

        def query_authorization_code(self, code: str, client: Client) -> Code | None:
            found = st.codes.get(code)
            return found if found and found.client_id == client.client_id else None

        def delete_authorization_code(self, authorization_code: Code) -> None:
            st.codes.pop(authorization_code.code, None)

        def authenticate_user(self, authorization_code: Code) -> dict[str, Any]:
            return {"sub": authorization_code.sub}

    class IdToken(OpenIDCode):
        def __init__(self) -> None:
            super().__init__(require_nonce=True)
            self.tamper: str | None = None

        def exists_nonce(self, nonce: str, request: OAuth2Request) -> bool:
            return False

        def process_token(self, grant: Any, response: Any) -> Any:
            self.tamper = st.take_tamper()
            if self.tamper == "rotate":
                client_id = grant.request.client.get_client_id()
                st.keys[client_id] = st._new_key(f"k{len(st.published) + 1}")
                st.published.append(st.keys[client_id])
            st.tokens_issued += 1
            return super().process_token(grant, response)

        def resolve_client_private_key(self, client: Client) -> RSAKey:
            key = st.keys[client.client_id]
            if self.tamper == "bad_signature":
                return State._new_key(key.kid)  # same kid, another key
            if self.tamper == "unknown_kid":
                return State._new_key("never-published")
            return key

        def get_client_algorithm(self, client: Client) -> str:
            return "RS256"

        def get_encode_header(self, client: Client) -> dict[str, str]:
            key = self.resolve_client_private_key(client)
            return {"alg": "RS256", "kid": key.kid}

        def get_client_claims(self, client: Client) -> dict[str, Any]:
            now = int(time.time())
            claims = {"iss": st.issuer, "aud": [client.client_id], "iat": now, "exp": now + 300}
            if self.tamper == "aud":
                claims["aud"] = ["someone-else"]
            elif self.tamper == "iss":
                claims["iss"] = "https://impostor.example"
            elif self.tamper == "expired":
                claims.update(iat=now - 3600, exp=now - 1800)
            return claims

        def get_authorization_code_claims(self, authorization_code: Code) -> dict[str, Any]:
            claims = super().get_authorization_code_claims(authorization_code)
            if self.tamper == "nonce":
                claims["nonce"] = "not-the-nonce-that-was-sent"
            return claims

        def generate_user_info(self, user: dict[str, Any], scope: str) -> dict[str, Any]:
            claims = dict(st.users.get(user["sub"]) or {})
            claims["sub"] = user["sub"]
            return claims

    class Server(AuthorizationServer):
        def query_client(self, client_id: str) -> Client | None:
            return st.clients.get(client_id)

        def save_token(self, token: dict, request: OAuth2Request) -> None:
            pass

        def create_oauth2_request(self, request: Request) -> OAuth2Request:
            return WerkzeugRequest(request)

        def create_json_request(self, request: Request) -> JsonRequest:
            return JsonRequest(request.method, request.url, request.headers)

        def handle_response(self, status: int, body: Any, headers: Any) -> Response:
            if isinstance(body, dict):
                body = json.dumps(body)
            return Response(body, status=status, headers=headers)

        def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
            pass

    server = Server(scopes_supported=SCOPES)
    server.register_token_generator(
        "default", BearerTokenGenerator(lambda *a, **k: secrets.token_urlsafe(32))
    )
    server.register_grant(CodeGrant, [PkceRequired(required=True), IdToken()])
    return server


def make_app(st: State) -> Any:
    server = build_server(st)

    def app(environ: dict, start_response: Any) -> Any:
        request = Request(environ)
        response = route(st, server, request)
        return response(environ, start_response)

    return app


def _json(data: Any, status: int = 200) -> Response:
    return Response(json.dumps(data), status=status, mimetype="application/json")


def route(st: State, server: AuthorizationServer, request: Request) -> Response:
    path = request.path
    if path == "/.well-known/openid-configuration":
        base = st.issuer
        return _json(
            {
                "issuer": st.issuer,
                "authorization_endpoint": f"{base}/authorize",
                "token_endpoint": f"{base}/token",
                "jwks_uri": f"{base}/jwks",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": SCOPES,
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
                "code_challenge_methods_supported": ["S256"],
            }
        )
    if path == "/jwks":
        return _json(st.jwks())
    if path == "/authorize":
        try:
            grant = server.get_consent_grant(request)
        except Exception as exc:  # an invalid request: say why, as a provider's error page does
            return Response(f"invalid request: {getattr(exc, 'description', exc)}", status=400)
        if request.method == "GET":
            client = html.escape(grant.client.client_id)
            return Response(
                f"<p>Sign in to {client}</p><form method=post><input name=sub placeholder=sub>"
                "<button>Authorize</button></form>",
                mimetype="text/html",
            )
        sub = request.form.get("sub")
        if not sub:
            return Response("sub is required", status=400)
        st.users.setdefault(sub, {"email": sub, "email_verified": True})
        return server.create_authorization_response(request, grant_user={"sub": sub}, grant=grant)
    if path == "/token" and request.method == "POST":
        return server.create_token_response(request)
    if path.startswith("/users/") and request.method == "PUT":
        st.users[path.removeprefix("/users/")] = request.get_json(force=True)
        return Response(status=204)
    if path == "/_control" and request.method == "POST":
        st.tamper = (request.get_json(force=True) or {}).get("tamper")
        return Response(status=204)
    if path == "/_stats":
        return _json({"tokens_issued": st.tokens_issued, "keys": [k.kid for k in st.published]})
    return Response("not found", status=404)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--client", action="append", required=True, help="ID:SECRET")
    args = parser.parse_args(argv)
    issuer = f"http://{args.host}:{args.port}"
    st = State(issuer, [Client(*c.split(":", 1)) for c in args.client])
    make_server(args.host, args.port, make_app(st), threaded=True).serve_forever()


if __name__ == "__main__":
    main()
