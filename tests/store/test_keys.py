"""lib/keys: virtual keys stored as keyed hashes, the per-worker cache, its file fallback."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from pydantic import ValidationError

from lib.errors import InvalidRequestError
from lib.keys import KeyCache, KeyNotFoundError, KeyRepository, KeySpec, looks_like_virtual_key
from lib.keys.model import utcnow
from lib.store import Store
from lib.store.schema import api_keys

SECRET = "test-hash-secret-0123456789abcdef"
#: A database nobody listens on (port 1): every connection is refused at once.
UNREACHABLE = "postgresql+psycopg://nobody@127.0.0.1:1/none"


@pytest.fixture
def repo(database_url: str) -> KeyRepository:
    store = Store(database_url)
    store.migrate()
    return KeyRepository(store, SECRET)


def spec(**kw: object) -> KeySpec:
    values: dict[str, object] = {"name": "rubric-tester", "owner": "ta-team", "scopes": ["assessment"]}
    values.update(kw)
    return KeySpec.model_validate(values)


def test_create_stores_only_a_keyed_hash(repo: KeyRepository) -> None:
    record, plaintext = repo.create(spec(models=["gpt-4o*"], rpm=60, monthly_budget_usd=5))
    assert looks_like_virtual_key(plaintext)
    assert record.key_prefix == plaintext[:10]
    with repo.store.engine.connect() as conn:
        row = conn.execute(sa.select(api_keys)).mappings().one()
    assert plaintext not in json.dumps({k: str(v) for k, v in row.items()})
    assert row["key_hash"] == repo.hash(plaintext) != KeyRepository(repo.store, SECRET + "x").hash(plaintext)
    assert repo.get(record.id).public()["models"] == ["gpt-4o*"]
    assert "key_hash" not in record.public()


def test_list_revoke_rotate(repo: KeyRepository) -> None:
    a, _ = repo.create(spec(name="a"))
    b, old = repo.create(spec(name="b"))
    assert [r.name for r in repo.all()] == ["a", "b"]
    revoked = repo.revoke(a.id)
    assert revoked.status() == "revoked" and repo.get(a.id).status() == "revoked"
    assert repo.revoke(a.id).revoked_at == revoked.revoked_at  # idempotent
    rotated, new = repo.rotate(b.id)
    assert new != old and rotated.id == b.id and repo.get(b.id).key_hash == repo.hash(new)
    with pytest.raises(InvalidRequestError, match="revoked"):
        repo.rotate(a.id)
    with pytest.raises(KeyNotFoundError):
        repo.get("key_missing")


def test_spec_validation_names_the_field() -> None:
    with pytest.raises(ValidationError, match="scopes"):
        KeySpec.model_validate({"name": "x", "scopes": ["everything"]})
    with pytest.raises(ValidationError, match="scopes"):
        KeySpec.model_validate({"name": "x", "scopes": []})
    with pytest.raises(ValidationError, match="models"):
        spec(models=["a,b"])
    with pytest.raises(ValidationError, match="rpm"):
        spec(rpm=0)
    for field, value in (("monthly_budget_usd", True), ("rpm", "5"), ("tpm", 2.0), ("expires_at", 5)):
        with pytest.raises(ValidationError, match=field):
            spec(**{field: value})
    assert spec(monthly_budget_usd=5).monthly_budget_usd == 5.0
    assert spec(scopes=["chat", "admin", "chat"]).scopes == ["chat", "admin"]
    aware = spec(expires_at="2030-01-01T12:00:00+02:00").expires_at
    assert aware == datetime(2030, 1, 1, 10, 0)


def test_model_allow_list_and_expiry(repo: KeyRepository) -> None:
    record, _ = repo.create(spec(models=["gpt-4o-mini", "bedrock.*claude*"]))
    assert record.allows_model("gpt-4o-mini")
    assert record.allows_model("bedrock.us.anthropic.claude-sonnet-4-5")
    assert not record.allows_model("gpt-4o")
    open_key, _ = repo.create(spec(expires_at=utcnow() - timedelta(seconds=1)))
    assert open_key.allows_model("anything") and open_key.status() == "expired"


def test_cache_sees_revocation_on_refresh(repo: KeyRepository, tmp_path: Path) -> None:
    record, plaintext = repo.create(spec())
    cache = KeyCache(repo, cache_file=tmp_path / "keys.json", refresh_seconds=0.05, spend_source=lambda: {})
    try:
        assert cache.lookup(plaintext) == record
        assert cache.lookup("aip_" + "x" * 43) is None
        assert cache.by_id(record.id) == record
        repo.revoke(record.id)
        assert cache.refresh()
        found = cache.lookup(plaintext)
        assert found is not None and found.status() == "revoked"
    finally:
        cache.stop()


def test_cache_file_serves_keys_when_the_database_is_down(repo: KeyRepository, tmp_path: Path) -> None:
    record, plaintext = repo.create(spec())
    file = tmp_path / "keys.json"
    KeyCache(repo, cache_file=file).refresh()
    assert plaintext not in file.read_text() and oct(file.stat().st_mode & 0o777) == "0o600"
    down = KeyRepository(Store(UNREACHABLE), SECRET)
    cache = KeyCache(down, cache_file=file, refresh_seconds=60)
    try:
        assert cache.lookup(plaintext) == record  # from the file, though the database is unreachable
        assert not cache.healthy
        assert cache.spend(record.id) == 0.0
        cache.add_spend(record.id, 1.5)
        assert cache.spend(record.id) == 1.5
    finally:
        cache.stop()


def test_cache_without_file_or_database_knows_no_keys(tmp_path: Path) -> None:
    down = KeyRepository(Store(UNREACHABLE), SECRET)
    cache = KeyCache(down, cache_file=tmp_path / "absent.json", refresh_seconds=60)
    try:
        assert cache.lookup("aip_" + "y" * 43) is None
        (tmp_path / "absent.json").write_text("{not json")
        cache._load_file()
        assert cache.lookup("aip_" + "y" * 43) is None
    finally:
        cache.stop()


def test_short_secret_is_refused(repo: KeyRepository) -> None:
    with pytest.raises(ValueError, match="KEY_HASH_SECRET"):
        KeyRepository(repo.store, "short")
