"""Short-lived JWTs for browser clients (the way Code.org's web app already signs one-minute tokens).

Only asymmetric signatures are accepted, RS256 and ES256, each only with a key of its own type: a
token's ``alg`` header never chooses how it is checked, so ``alg: none`` and "HS256 signed with the
public key as the secret" are refused before any signature check.  Required claims: ``iss`` (the
configured issuer), ``aud`` (the configured audience), ``sub`` (the user: per-user limits), ``exp``
and ``iat``; a token whose ``exp - iat`` is longer than ``JWT_MAX_LIFETIME_MINUTES`` is refused, so
a leaked token is useless within minutes.  Scopes come from one claim (a space-separated string or a
list) and are mapped to route groups by ``JWT_SCOPE_ROUTES``.

Every refusal is a ``TokenError`` whose message names the reason and never contains the token.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lib.settings import Settings, SettingsError

# PyJWT and cryptography (about 23 MB per worker) are imported only when JWT_ISSUER is configured
# (TokenVerifier is built then): a worker without browser tokens never loads them.

#: The algorithms accepted (each only with a key of its own type, see ``_key_types``).
ALGORITHMS = ("RS256", "ES256")


def _key_types() -> dict[str, type[Any]]:
    """The key type each accepted algorithm needs."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    return {"RS256": rsa.RSAPublicKey, "ES256": ec.EllipticCurvePublicKey}


class TokenError(Exception):
    """The token is refused (401); ``str()`` is the reason, safe to show the client."""


@dataclass(frozen=True)
class TokenClaims:
    sub: str
    scopes: frozenset[str]
    expires_at: int


def looks_like_jwt(value: str) -> bool:
    """Three dot-separated parts starting with a JSON header: worth verifying as a token."""
    return value.startswith("eyJ") and value.count(".") == 2


def _key_algorithm(key: Any) -> str:
    for alg, key_type in _key_types().items():
        if isinstance(key, key_type):
            if alg == "ES256" and key.curve.name != "secp256r1":
                raise SettingsError("JWT keys: ES256 needs a P-256 key")
            return alg
    raise SettingsError("JWT keys: only RSA (RS256) and P-256 EC (ES256) public keys are accepted")


def _load_keys(settings: Settings) -> dict[str | None, tuple[Any, str]]:
    """kid (None for the single PEM key) -> (public key, its one algorithm)."""
    import jwt
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    keys: dict[str | None, tuple[Any, str]] = {}
    if settings.jwt_public_key_file is not None:
        try:
            key = load_pem_public_key(Path(settings.jwt_public_key_file).read_bytes())
        except (OSError, ValueError) as exc:
            raise SettingsError(f"JWT_PUBLIC_KEY_FILE: cannot read a PEM public key ({exc})") from None
        keys[None] = (key, _key_algorithm(key))
    if settings.jwt_jwks_file is not None:
        try:
            data = json.loads(Path(settings.jwt_jwks_file).read_text())
            jwks = jwt.PyJWKSet.from_dict(data)
        except (OSError, ValueError, jwt.PyJWTError) as exc:
            raise SettingsError(f"JWT_JWKS_FILE: cannot read a JWKS ({exc})") from None
        for jwk in jwks.keys:
            keys[jwk.key_id] = (jwk.key, _key_algorithm(jwk.key))
    return keys


class TokenVerifier:
    """Built once at start-up from the settings (a bad key file stops start-up, naming the setting)."""

    def __init__(self, settings: Settings) -> None:
        if not settings.jwt_issuer or not settings.jwt_audience:
            raise SettingsError("JWT_ISSUER and JWT_AUDIENCE must both be set to accept browser tokens")
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self.max_lifetime_s = settings.jwt_max_lifetime_minutes * 60
        self.leeway = settings.jwt_leeway_seconds
        self.scope_claim = settings.jwt_scope_claim
        self.scope_routes = settings.jwt_scope_routes
        self.keys = _load_keys(settings)
        if not self.keys:
            raise SettingsError("JWT_ISSUER is set but neither JWT_PUBLIC_KEY_FILE nor JWT_JWKS_FILE is")

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenVerifier | None:
        """None when browser tokens are not configured (no ``JWT_ISSUER``)."""
        return cls(settings) if settings.jwt_issuer else None

    def _key_for(self, header: dict[str, Any]) -> tuple[Any, str]:
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise TokenError(f"token algorithm {str(alg)[:16]!r} is not accepted (RS256 or ES256 only)")
        kid = header.get("kid")
        if kid is not None and kid in self.keys:
            entry = self.keys[kid]
        elif len(self.keys) == 1:
            entry = next(iter(self.keys.values()))
        else:
            raise TokenError("token kid names no configured key")
        if entry[1] != alg:
            raise TokenError(f"token algorithm {alg} does not match the issuer's {entry[1]} key")
        return entry

    def verify(self, token: str) -> TokenClaims:
        import jwt  # loaded by _load_keys already: a dictionary lookup here

        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenError("token is not a well-formed JWT") from None
        key, alg = self._key_for(header)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iat", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("token expired") from None
        except jwt.InvalidAudienceError:
            raise TokenError("token audience (aud) is not this service") from None
        except jwt.InvalidIssuerError:
            raise TokenError("token issuer (iss) is not the configured issuer") from None
        except jwt.InvalidSignatureError:
            raise TokenError("token signature does not verify with the issuer's key") from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenError(f"token has no {exc.claim} claim") from None
        except jwt.DecodeError:
            raise TokenError("token is not a well-formed JWT") from None
        except jwt.ImmatureSignatureError:
            raise TokenError("token is not valid yet (nbf/iat in the future)") from None
        except jwt.PyJWTError as exc:
            raise TokenError(f"token refused ({type(exc).__name__})") from None
        return self._claims(claims)

    def _claims(self, claims: dict[str, Any]) -> TokenClaims:
        exp, iat, sub = claims["exp"], claims["iat"], claims["sub"]
        if not isinstance(exp, int | float) or not isinstance(iat, int | float):
            raise TokenError("token exp and iat must be numbers")
        lifetime = exp - iat
        if lifetime > self.max_lifetime_s:
            raise TokenError(
                f"token lifetime (exp - iat) of {lifetime / 60:g} min exceeds the "
                f"{self.max_lifetime_s / 60:g} min maximum"
            )
        if not isinstance(sub, str) or not sub.strip():
            raise TokenError("token sub must be a non-empty string")
        raw = claims.get(self.scope_claim, "")
        names = (
            raw.split() if isinstance(raw, str) else [str(s) for s in raw] if isinstance(raw, list) else []
        )
        return TokenClaims(sub=sub, scopes=frozenset(names), expires_at=int(exp))

    def route_groups(self, claims: TokenClaims) -> frozenset[str]:
        """The route groups the token's scopes open (a scope not in ``JWT_SCOPE_ROUTES`` opens the
        group of the same name)."""
        groups: set[str] = set()
        for scope in claims.scopes:
            groups.update(self.scope_routes.get(scope, [scope]))
        return frozenset(groups)
