"""Browser JWTs: RS256/ES256 from the configured issuer only, short-lived, scoped, limited per ``sub``.

Tokens are signed here with real keys (cryptography + PyJWT); forged ones are built by hand where a
library would refuse to make them (``alg: none``, HS256 keyed with the public key).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from flask import Flask

from lib.settings import SettingsError
from lib.tokens import TokenVerifier, looks_like_jwt
from tests.conftest import make_settings
from tests.support.openai_mock import OpenAIMock

ISSUER = "https://studio.code.org"
AUDIENCE = "aiproxy"
BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


def _pem(key: Any) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def claims(**over: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "student-42",
        "iat": now,
        "exp": now + 60,
        "scope": "chat embeddings",
    }
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(header: dict[str, Any], payload: dict[str, Any], secret: bytes | None) -> str:
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest() if secret else b""
    return f"{signing_input}.{_b64(signature)}"


@pytest.fixture
def token_app(
    app_factory: Callable[..., Flask], openai_mock: OpenAIMock, tmp_path: Path, rsa_key: rsa.RSAPrivateKey
) -> Flask:
    key_file = tmp_path / "issuer.pem"
    key_file.write_bytes(_pem(rsa_key))
    settings = make_settings(
        openai_api_key="sk-test",
        openai_base_url=openai_mock.base_url,
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        jwt_public_key_file=str(key_file),
        jwt_max_lifetime_minutes=5,
        jwt_sub_rpm=3,
        limits_sqlite_path=str(tmp_path / "limits.db"),
    )
    return app_factory(settings)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_valid_token_works(token_app: Flask, rsa_key: rsa.RSAPrivateKey) -> None:
    token = jwt.encode(claims(), rsa_key, algorithm="RS256")
    client = token_app.test_client()
    r = client.post("/chat", json=BODY, headers=bearer(token))
    assert r.status_code == 200, r.get_json()
    assert client.get("/v1/models", headers=bearer(token)).status_code == 200  # no scope needed


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (
            lambda k, o: jwt.encode(
                claims(iat=int(time.time()) - 200, exp=int(time.time()) - 100), k, algorithm="RS256"
            ),
            "token expired",
        ),
        (lambda k, o: jwt.encode(claims(aud="someone-else"), k, algorithm="RS256"), "audience"),
        (lambda k, o: jwt.encode(claims(iss="https://evil.example"), k, algorithm="RS256"), "issuer"),
        (lambda k, o: jwt.encode(claims(), o, algorithm="RS256"), "signature does not verify"),
        (lambda k, o: forged({"alg": "none", "typ": "JWT"}, claims(), None), "'none' is not accepted"),
        (
            lambda k, o: forged({"alg": "HS256", "typ": "JWT"}, claims(), _pem(k)),
            "'HS256' is not accepted",
        ),
        (lambda k, o: jwt.encode(claims(exp=None), k, algorithm="RS256"), "no exp claim"),
        (lambda k, o: jwt.encode(claims(iat=None), k, algorithm="RS256"), "no iat claim"),
        (lambda k, o: jwt.encode(claims(sub=None), k, algorithm="RS256"), "no sub claim"),
        (
            lambda k, o: jwt.encode(claims(exp=int(time.time()) + 3600), k, algorithm="RS256"),
            "lifetime (exp - iat) of 60 min exceeds the 5 min maximum",
        ),
        (lambda k, o: jwt.encode(claims(sub=""), k, algorithm="RS256"), "sub must be a non-empty"),
        (lambda k, o: jwt.encode(claims(), k, algorithm="PS256"), "'PS256' is not accepted"),
        (lambda k, o: jwt.encode(claims(nbf=int(time.time()) + 120), k, algorithm="RS256"), "not valid yet"),
        (lambda k, o: "eyJhbGciOiJSUzI1NiJ9.not-base64!.x", "well-formed"),
    ],
    ids=[
        "expired",
        "wrong-audience",
        "wrong-issuer",
        "wrong-key",
        "alg-none",
        "hs256-public-key-secret",
        "missing-exp",
        "missing-iat",
        "missing-sub",
        "too-long-lifetime",
        "empty-sub",
        "pss",
        "not-yet",
        "garbage",
    ],
)
def test_refused_tokens_are_401_naming_the_reason(
    token_app: Flask,
    rsa_key: rsa.RSAPrivateKey,
    other_key: rsa.RSAPrivateKey,
    make: Callable[..., str],
    reason: str,
) -> None:
    token = make(rsa_key, other_key)
    assert looks_like_jwt(token)
    for path, method in (("/chat", "post"), ("/v1/chat/completions", "post")):
        r = getattr(token_app.test_client(), method)(path, json=BODY, headers=bearer(token))
        assert r.status_code == 401
        text = r.get_data(as_text=True)
        assert reason in text and "invalid token" in text
        assert token not in text and token.split(".")[1] not in text  # never echoed
        assert r.headers["WWW-Authenticate"].startswith("Bearer")


def test_token_scopes_open_route_groups(token_app: Flask, rsa_key: rsa.RSAPrivateKey) -> None:
    client = token_app.test_client()
    only_embed = jwt.encode(claims(scope="embeddings"), rsa_key, algorithm="RS256")
    r = client.post("/chat", json=BODY, headers=bearer(only_embed))
    assert r.status_code == 403 and "'chat'" in r.get_json()["error"]
    assert (
        client.post(
            "/embeddings", json={"input": "x", "model": "text-embedding-3-small"}, headers=bearer(only_embed)
        ).status_code
        == 200
    )
    admin = jwt.encode(claims(scope="admin chat"), rsa_key, algorithm="RS256")
    assert client.get("/metrics", headers=bearer(admin)).status_code == 403  # never for browser tokens


def test_limits_are_per_sub(token_app: Flask, rsa_key: rsa.RSAPrivateKey) -> None:
    client = token_app.test_client()
    alice = bearer(jwt.encode(claims(sub="alice"), rsa_key, algorithm="RS256"))
    bob = bearer(jwt.encode(claims(sub="bob"), rsa_key, algorithm="RS256"))
    for _ in range(3):
        assert client.get("/v1/models", headers=alice).status_code == 200
    r = client.get("/v1/models", headers=alice)
    assert r.status_code == 429 and r.get_json()["error"]["code"] == "quota"
    assert "this user" in r.get_json()["error"]["message"]
    assert client.get("/v1/models", headers=bob).status_code == 200  # one student, not the class
    assert client.get("/v1/models", headers={"Authorization": "test-key-1"}).status_code == 200


def test_es256_from_a_jwks_file_by_kid(
    app_factory: Callable[..., Flask],
    tmp_path: Path,
    ec_key: ec.EllipticCurvePrivateKey,
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    jwks = {
        "keys": [
            {
                **json.loads(jwt.algorithms.ECAlgorithm.to_jwk(ec_key.public_key())),
                "kid": "ec1",
                "use": "sig",
            },
            {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key())), "kid": "rsa1"},
        ]
    }
    (tmp_path / "jwks.json").write_text(json.dumps(jwks))
    settings = make_settings(
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        jwt_jwks_file=str(tmp_path / "jwks.json"),
        jwt_scope_routes='{"webapp-ai": ["chat", "embeddings"]}',
        aiproxy_api_key="",
        limits_sqlite_path=str(tmp_path / "l.db"),
    )
    client = app_factory(settings).test_client()
    good = jwt.encode(claims(scope="webapp-ai"), ec_key, algorithm="ES256", headers={"kid": "ec1"})
    assert client.get("/v1/models", headers=bearer(good)).status_code == 200
    verifier = TokenVerifier(settings)
    assert verifier.route_groups(verifier.verify(good)) == {"chat", "embeddings"}
    # The RSA key under its kid, but signed ES256: the key decides the algorithm, not the token.
    mixed = jwt.encode(claims(), ec_key, algorithm="ES256", headers={"kid": "rsa1"})
    r = client.get("/v1/models", headers=bearer(mixed))
    assert r.status_code == 401 and "does not match" in r.get_json()["error"]["message"]
    unknown = jwt.encode(claims(), ec_key, algorithm="ES256", headers={"kid": "nope"})
    assert "kid" in client.get("/v1/models", headers=bearer(unknown)).get_json()["error"]["message"]
    # Only tokens are configured: a key-looking string is just an invalid key.
    assert client.get("/v1/models", headers={"Authorization": "abc"}).status_code == 401


def test_bad_token_settings_stop_start_up(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="JWT_AUDIENCE"):
        TokenVerifier(make_settings(jwt_issuer=ISSUER))
    with pytest.raises(SettingsError, match="neither"):
        TokenVerifier(make_settings(jwt_issuer=ISSUER, jwt_audience=AUDIENCE))
    with pytest.raises(SettingsError, match="JWT_PUBLIC_KEY_FILE"):
        TokenVerifier(
            make_settings(jwt_issuer=ISSUER, jwt_audience=AUDIENCE, jwt_public_key_file=str(tmp_path / "x"))
        )
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(SettingsError, match="JWT_JWKS_FILE"):
        TokenVerifier(
            make_settings(jwt_issuer=ISSUER, jwt_audience=AUDIENCE, jwt_jwks_file=str(tmp_path / "bad.json"))
        )
    p384 = ec.generate_private_key(ec.SECP384R1())
    (tmp_path / "p384.pem").write_bytes(_pem(p384))
    with pytest.raises(SettingsError, match="P-256"):
        TokenVerifier(
            make_settings(
                jwt_issuer=ISSUER, jwt_audience=AUDIENCE, jwt_public_key_file=str(tmp_path / "p384.pem")
            )
        )
    assert TokenVerifier.from_settings(make_settings()) is None
