"""The adapter to an OpenID Connect provider: discovery, JWKS, the code exchange, token checks.

It wraps PyJWT (signatures, ``exp``/``iat`` with a bounded leeway, ``iss``, ``aud``) and httpx
(discovery, JWKS, token endpoint). What it adds on top, and why:

- **Algorithms are Warden's choice, not the token's.** Only asymmetric algorithms from the
  configured list are accepted, and the key is taken from the provider's JWKS by ``kid`` and
  must be of the matching type. So ``alg: none`` and the HS256 "public key as HMAC secret"
  confusion are refused before any signature check.
- **Key rotation without a restart.** The JWKS is cached; a token naming an unknown ``kid``
  triggers one refetch (at most once per ``jwks_refresh_seconds``, so a flood of made-up kids
  cannot turn Warden into a load generator against the provider).
- **Refusals carry two texts.** :class:`TokenRefused` has a ``detail`` safe to show the holder
  (what to do) and an ``audit_reason`` (exactly why) that only the audit log receives.

Nothing here reads settings or the store: the composition root builds one :class:`OpenIDProvider`
per process from ``WARDEN_OIDC_*`` and hands it the client secret already unsealed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

from lineage.errors import Unauthenticated, Unavailable

if TYPE_CHECKING:
    import httpx

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "OpenIDProvider",
    "ProviderMetadata",
    "TokenRefused",
    "pkce_challenge",
]

ASYMMETRIC_ALGORITHMS: tuple[str, ...] = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
"""Every algorithm Warden may accept: public-key signatures only (never ``none`` or HS*)."""

_KEY_TYPE = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}
_METADATA_SECONDS = 3600.0
_ACCESS_REFUSED = (
    "the access token was not accepted; request a new one for this Warden's audience from "
    "the configured identity provider (the reason is in Warden's audit log)"
)
_ID_REFUSED = "the identity provider's answer could not be verified; start the sign-in again"


class TokenRefused(Unauthenticated):
    """A token failed validation: ``detail`` is for its holder, ``audit_reason`` for auditors."""

    def __init__(self, detail: str, *, audit_reason: str) -> None:
        super().__init__(detail)
        self.audit_reason = audit_reason


@dataclass(frozen=True, slots=True)
class ProviderMetadata:
    """The parts of the discovery document Warden uses."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    token_auth_methods: tuple[str, ...] = ("client_secret_basic",)
    # RFC 9207: a provider that says it names itself in every authorization response must.
    iss_in_authorization_response: bool = False


def pkce_challenge(verifier: str) -> str:
    """Return the S256 PKCE challenge of ``verifier`` (RFC 7636)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass
class _KeyCache:
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    fetched_at: float = float("-inf")


class OpenIDProvider:
    """One configured identity provider: where it is, who Warden is to it, what it accepts."""

    def __init__(
        self,
        *,
        issuer: str,
        client_id: str,
        client_secret: str | None,
        api_audience: str | None = None,
        algorithms: Sequence[str] = ("RS256", "PS256", "ES256", "EdDSA"),
        leeway_seconds: float = 60.0,
        jwks_refresh_seconds: float = 10.0,
        jwks_max_age_seconds: float = 3600.0,
        timeout_seconds: float = 10.0,
        ca_file: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Describe the provider; nothing is fetched until the first sign-in or token."""
        unsafe = sorted(set(algorithms) - set(ASYMMETRIC_ALGORITHMS))
        if unsafe:
            raise ValueError(f"algorithms {unsafe} are not allowed; use public-key ones only")
        self.issuer = issuer
        self.client_id = client_id
        self._client_secret = client_secret
        self.api_audience = api_audience
        self._algorithms = tuple(algorithms)
        self._leeway = leeway_seconds
        self._refresh = jwks_refresh_seconds
        self._max_age = jwks_max_age_seconds
        self._timeout = timeout_seconds
        self._verify: str | bool = str(ca_file) if ca_file else True
        self._clock = clock
        self._lock = threading.Lock()
        self._metadata: tuple[ProviderMetadata, float] | None = None
        self._jwks = _KeyCache()

    # --- HTTP --------------------------------------------------------------------------------

    def _client(self) -> httpx.Client:
        import httpx  # imported on the first call to the provider, not to start the API

        return httpx.Client(timeout=self._timeout, verify=self._verify, follow_redirects=False)

    def _get_json(self, url: str, what: str) -> dict[str, Any]:
        import httpx

        try:
            with self._client() as client:
                response = client.get(url, headers={"Accept": "application/json"})
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as error:
            raise Unavailable(
                f"the identity provider's {what} could not be read ({type(error).__name__}); "
                "check WARDEN_OIDC_ISSUER and that the provider is reachable, then retry"
            ) from error
        if not isinstance(body, dict):
            raise Unavailable(f"the identity provider's {what} is not a JSON object")
        return body

    def metadata(self) -> ProviderMetadata:
        """Return the discovery document's endpoints (cached for an hour).

        Raises:
            Unavailable: The document cannot be read, or names another issuer.
        """
        with self._lock:
            cached = self._metadata
        if cached is not None and self._clock() - cached[1] < _METADATA_SECONDS:
            return cached[0]
        url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
        doc = self._get_json(url, "discovery document")
        if doc.get("issuer") != self.issuer:
            raise Unavailable(
                f"the discovery document names issuer {doc.get('issuer')!r}, not "
                f"{self.issuer!r}; set WARDEN_OIDC_ISSUER to exactly the provider's issuer"
            )
        try:
            metadata = ProviderMetadata(
                issuer=self.issuer,
                authorization_endpoint=str(doc["authorization_endpoint"]),
                token_endpoint=str(doc["token_endpoint"]),
                jwks_uri=str(doc["jwks_uri"]),
                token_auth_methods=tuple(
                    doc.get("token_endpoint_auth_methods_supported", ["client_secret_basic"])
                ),
                iss_in_authorization_response=doc.get(
                    "authorization_response_iss_parameter_supported"
                )
                is True,
            )
        except KeyError as error:
            raise Unavailable(f"the discovery document lacks {error.args[0]!r}") from error
        with self._lock:
            self._metadata = (metadata, self._clock())
        return metadata

    def _fetch_keys(self) -> None:
        doc = self._get_json(self.metadata().jwks_uri, "key set (JWKS)")
        keys = {
            str(k.get("kid", "")): k
            for k in doc.get("keys", [])
            if isinstance(k, dict) and k.get("use", "sig") == "sig"
        }
        with self._lock:
            self._jwks = _KeyCache(keys=keys, fetched_at=self._clock())

    def _key_for(self, kid: str, alg: str) -> dict[str, Any] | None:
        """Return the JWK named ``kid`` (refetching once for an unknown one), else ``None``."""
        now = self._clock()
        with self._lock:
            cache = self._jwks
        stale = now - cache.fetched_at >= self._max_age
        if stale or (kid not in cache.keys and now - cache.fetched_at >= self._refresh):
            self._fetch_keys()
            with self._lock:
                cache = self._jwks
        if kid in cache.keys:
            return cache.keys[kid]
        if not kid:  # no kid: acceptable only when one key of the right type is published
            kty = _KEY_TYPE.get(alg[:2])
            fitting = [k for k in cache.keys.values() if k.get("kty") == kty]
            return fitting[0] if len(fitting) == 1 else None
        return None

    # --- the authorization-code flow --------------------------------------------------------

    def authorization_url(
        self,
        *,
        redirect_uri: str,
        state: str,
        nonce: str,
        code_verifier: str,
        scopes: Sequence[str],
    ) -> str:
        """Return the provider URL that starts a sign-in (code flow, PKCE S256, state, nonce)."""
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": redirect_uri,
                "scope": " ".join(scopes),
                "state": state,
                "nonce": nonce,
                "code_challenge": pkce_challenge(code_verifier),
                "code_challenge_method": "S256",
            }
        )
        endpoint = self.metadata().authorization_endpoint
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"

    def exchange_code(self, *, code: str, redirect_uri: str, code_verifier: str) -> str:
        """Redeem an authorization code at the token endpoint; return the raw ID token.

        Raises:
            TokenRefused: The provider refused the code (used, expired, wrong verifier).
            Unavailable: The provider cannot be reached.
        """
        import httpx

        metadata = self.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }
        auth = httpx.Auth()  # sends nothing: a public client, or the secret in the form
        secret = self._client_secret or ""
        if not secret:
            form["client_id"] = self.client_id
        elif "client_secret_basic" in metadata.token_auth_methods:
            # RFC 6749 2.3.1: both parts are form-encoded before HTTP Basic.
            auth = httpx.BasicAuth(quote(self.client_id, safe=""), quote(secret, safe=""))
        else:
            form |= {"client_id": self.client_id, "client_secret": secret}
        try:
            with self._client() as client:
                response = client.post(
                    metadata.token_endpoint,
                    data=form,
                    auth=auth,
                    headers={"Accept": "application/json"},
                )
        except httpx.HTTPError as error:
            raise Unavailable(
                f"the identity provider's token endpoint is unreachable ({type(error).__name__})"
            ) from error
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or not isinstance(body, dict):
            error_code = body.get("error", response.status_code) if isinstance(body, dict) else ""
            raise TokenRefused(
                _ID_REFUSED, audit_reason=f"the token endpoint refused the code: {error_code}"
            )
        id_token = body.get("id_token")
        if not isinstance(id_token, str):
            raise TokenRefused(_ID_REFUSED, audit_reason="the token response has no id_token")
        return id_token

    # --- validation -------------------------------------------------------------------------

    def _validate(self, token: str, *, audience: str, refused: str) -> dict[str, Any]:
        import jwt  # PyJWT brings cryptography's X.509: loaded on the first token to check

        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise TokenRefused(refused, audit_reason=f"not a JWT: {error}") from None
        alg = str(header.get("alg", ""))
        if alg not in self._algorithms:
            raise TokenRefused(
                refused,
                audit_reason=f"algorithm {alg!r} is not accepted (allowed: "
                f"{', '.join(self._algorithms)})",
            )
        kid = str(header.get("kid", ""))
        jwk = self._key_for(kid, alg)
        if jwk is None:
            raise TokenRefused(
                refused, audit_reason=f"no key {kid!r} in the issuer's JWKS, even after a refetch"
            )
        if jwk.get("kty") != _KEY_TYPE.get(alg[:2]) or jwk.get("alg", alg) != alg:
            raise TokenRefused(
                refused,
                audit_reason=f"key {kid!r} ({jwk.get('kty')}, {jwk.get('alg')}) does not fit "
                f"algorithm {alg!r}",
            )
        try:
            key = jwt.PyJWK(jwk, algorithm=alg)
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=audience,
                issuer=self.issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenRefused(
                "the token has expired; sign in again or request a new token",
                audit_reason="expired (exp passed, beyond the leeway)",
            ) from None
        except jwt.PyJWTError as error:
            raise TokenRefused(refused, audit_reason=f"{type(error).__name__}: {error}") from None
        return claims

    def validate_id_token(self, token: str, *, nonce: str) -> dict[str, Any]:
        """Return an ID token's claims after checking signature, iss, aud, azp, exp and nonce.

        Raises:
            TokenRefused: Any check failed (the audit reason says which).
            Unavailable: The provider's keys cannot be read.
        """
        claims = self._validate(token, audience=self.client_id, refused=_ID_REFUSED)
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.client_id:
            raise TokenRefused(
                _ID_REFUSED, audit_reason="several audiences and azp is not this client"
            )
        sent = claims.get("nonce")
        if not isinstance(sent, str) or not sent:
            raise TokenRefused(_ID_REFUSED, audit_reason="the ID token carries no nonce")
        if not hmac.compare_digest(sent.encode(), nonce.encode()):
            raise TokenRefused(
                _ID_REFUSED, audit_reason="the ID token's nonce is not this sign-in's"
            )
        return claims

    def validate_access_token(self, token: str) -> dict[str, Any]:
        """Return a client-credentials access token's claims (signature, iss, aud, exp).

        Raises:
            TokenRefused: Any check failed, or no API audience is configured.
            Unavailable: The provider's keys cannot be read.
        """
        if not self.api_audience:
            raise TokenRefused(
                "this Warden accepts API keys only; send `Authorization: Bearer wdn_…`",
                audit_reason="a JWT was sent but WARDEN_OIDC_API_AUDIENCE is not set",
            )
        claims = self._validate(token, audience=self.api_audience, refused=_ACCESS_REFUSED)
        if "nonce" in claims or claims.get("typ") == "ID":
            raise TokenRefused(_ACCESS_REFUSED, audit_reason="an ID token was sent as access token")
        return claims
