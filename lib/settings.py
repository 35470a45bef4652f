"""The one settings object, read from the environment and from ``config.txt`` (KEY=VALUE lines).

Environment variables win over ``config.txt``.  ``config.txt.sample`` documents every key.  A bad
value (or an unknown key in ``config.txt``) stops start-up with a message naming the setting.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent

#: Today's production default for ``/assessment`` (what the Code.org web app relies on).
PRODUCTION_ASSESSMENT_MODEL = "bedrock.us.anthropic.claude-sonnet-4-5-20250929-v1:0"
PRODUCTION_CHAT_MODEL = PRODUCTION_ASSESSMENT_MODEL
PRODUCTION_EMBEDDING_MODEL = "bedrock.amazon.titan-embed-text-v1"


class SettingsError(Exception):
    """Raised (and printed by the entry points) when the settings are invalid."""


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _json_or_pairs(value: Any) -> Any:
    """``{"a": "b"}`` JSON, or ``a=b,c=d`` pairs."""
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return {}
        if text.startswith("{"):
            return json.loads(text)
        out: dict[str, str] = {}
        for pair in text.split(","):
            if "=" not in pair:
                raise ValueError(f"expected NAME=TARGET pairs or a JSON object, got {pair!r}")
            k, v = pair.split("=", 1)
            out[k.strip()] = v.strip()
        return out
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=None,  # set per instance by load_settings()
        env_file_encoding="utf-8-sig",
        extra="forbid",
        case_sensitive=False,
        frozen=True,
    )

    # --- auth -------------------------------------------------------------------------------
    aiproxy_api_key: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Key(s) clients send in Authorization (raw or Bearer); comma-separated for rotation.",
    )
    aiproxy_allow_unauthenticated: bool = Field(
        False,
        description="Development switch: run without AIPROXY_API_KEY. bin/serve sets it only on loopback.",
    )

    # --- upstream credentials -----------------------------------------------------------------
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    openai_organization: str | None = None
    aws_region: str = Field("us-east-1", description="Region of the Bedrock runtime endpoint.")
    aws_access_key_id: SecretStr | None = None
    aws_secret_access_key: SecretStr | None = None
    aws_session_token: SecretStr | None = None
    aws_profile: str | None = None
    aws_endpoint_url_bedrock_runtime: str | None = None
    aws_endpoint_url_sagemaker_runtime: str | None = Field(
        None, description="SageMaker runtime endpoint; unset = botocore's own (regional) endpoint."
    )

    # --- models ---------------------------------------------------------------------------------
    default_chat_model: str | None = Field(
        None,
        description="Model for /chat and /v1 when none is named; unset = auto (local without cloud keys).",
    )
    default_embedding_model: str | None = None
    default_assessment_model: str | None = None
    model_aliases: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    model_fallbacks: Annotated[dict[str, list[str]], NoDecode] = Field(default_factory=dict)

    # --- resilience -----------------------------------------------------------------------------
    request_deadline_seconds: float = Field(150.0, gt=0, le=3600)
    upstream_connect_timeout_seconds: float = Field(10.0, gt=0)
    max_retries: int = Field(3, ge=0, le=10)
    retry_base_delay_seconds: float = Field(0.5, ge=0)
    retry_max_delay_seconds: float = Field(20.0, ge=0)
    max_body_bytes: int = Field(2 * 1024 * 1024, gt=0)
    upstream_pool_size: int = Field(1024, gt=0, description="Max open connections per upstream per worker.")

    # --- local provider -------------------------------------------------------------------------
    local_max_concurrent: int = Field(1, ge=1, description="Local generations running at once per worker.")
    local_max_queue: int = Field(8, ge=0, description="Local generations waiting per worker before 503.")
    local_n_threads: int | None = Field(
        None, ge=1, description="CPU threads per local generation; unset = half the cores (1 on 2 cores)."
    )
    local_embed_frozen: bool = Field(
        True, description="MiniLM through a TorchScript-frozen BERT (same vectors, faster); false = encode()."
    )
    local_chat_context: int = Field(8192, ge=512, le=8192, description="SmolLM2 context window (tokens).")
    local_default_max_tokens: int = Field(
        512, ge=1, description="Local chat answer limit when the request names no max_tokens."
    )

    # --- rubric tester (issue 8) ---------------------------------------------------------------
    rubric_tester_s3_bucket: str = Field(
        "cdo-ai", description="S3 bucket of rubric tester datasets/experiments."
    )
    rubric_tester_s3_prefix: str = Field("teaching_assistant", description="Key prefix inside that bucket.")

    # --- storage, virtual keys, usage ledger (issue 14) ---------------------------------------
    data_dir: Path = Field(
        REPO_ROOT / "data",
        description="Writable directory of the embedded SQLite database and the key cache file.",
    )
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL, e.g. postgresql+psycopg://user:pw@host/db; unset = DATA_DIR/aiproxy.db.",
    )
    key_hash_secret: SecretStr | None = Field(
        None,
        description="HMAC-SHA256 secret virtual keys are stored under; the same on every replica. "
        "Unset = virtual keys are off (only AIPROXY_API_KEY works).",
    )
    key_cache_refresh_seconds: float = Field(
        2.0, gt=0, le=5, description="How often each worker reloads keys and spend (revocation delay)."
    )
    ledger_flush_seconds: float = Field(0.5, gt=0, le=60, description="Ledger writer batch interval.")
    ledger_queue_max: int = Field(100_000, ge=100, description="Ledger rows held in memory at most.")

    # --- assessment records and teacher feedback (issue 15) ----------------------------------
    store_student_code: bool = Field(
        False, description="Keep the student's program with each assessment record (datasets, fine-tuning)."
    )
    record_retention_days: int | None = Field(
        None, ge=1, description="Delete assessment records and their feedback older than this; unset = keep."
    )
    record_retention_interval_seconds: float = Field(
        3600.0, gt=0, description="How often each worker deletes expired assessment records."
    )

    # --- limits and browser tokens (issue 14) ---------------------------------------------------
    redis_url: SecretStr | None = Field(
        None, description="Redis shared by every worker and replica for limits; unset = SQLite on this box."
    )
    limits_backend: Literal["auto", "redis", "sqlite", "memory"] = Field(
        "auto", description="auto = Redis when REDIS_URL is set, else the SQLite file."
    )
    limits_sqlite_path: Path | None = Field(
        None, description="SQLite file of the limit counters; unset = DATA_DIR/limits.db."
    )
    root_key_rpm: int | None = Field(None, ge=1, description="Requests per minute of the root key.")
    root_key_tpm: int | None = Field(None, ge=1, description="Tokens per minute of the root key.")
    root_key_concurrency: int | None = Field(None, ge=1, description="Requests at once of the root key.")
    root_key_class: Literal["interactive", "batch"] = Field(
        "interactive", description="batch = backs off first while an upstream throttles."
    )
    batch_cooldown_seconds: float = Field(
        30.0, ge=0, le=3600, description="How long batch-class callers get 429 after an upstream throttle."
    )
    jwt_issuer: str | None = Field(None, description="Accepted iss of browser JWTs; unset = JWTs are off.")
    jwt_audience: str | None = Field(None, description="Required aud of browser JWTs.")
    jwt_public_key_file: Path | None = Field(None, description="PEM public key (RSA or EC) of the issuer.")
    jwt_jwks_file: Path | None = Field(None, description="JWKS file of the issuer (keys chosen by kid).")
    jwt_max_lifetime_minutes: float = Field(
        5.0, gt=0, le=1440, description="Tokens whose exp - iat is longer are refused."
    )
    jwt_leeway_seconds: int = Field(10, ge=0, le=300, description="Clock skew allowed on exp, iat, nbf.")
    jwt_scope_claim: str = Field("scope", description="Claim holding the token's scopes.")
    jwt_scope_routes: Annotated[dict[str, list[str]], NoDecode] = Field(
        default_factory=dict,
        description="Claim scope -> route groups (chat, embeddings, assessment, images); unset = same names.",
    )
    jwt_sub_rpm: int | None = Field(None, ge=1, description="Requests per minute of each token sub.")
    jwt_sub_tpm: int | None = Field(None, ge=1, description="Tokens per minute of each token sub.")
    jwt_sub_concurrency: int | None = Field(None, ge=1, description="Requests at once of each token sub.")

    # --- operations -----------------------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:
        return v.upper() if isinstance(v, str) else v

    @field_validator("aiproxy_api_key", mode="before")
    @classmethod
    def _keys(cls, v: Any) -> Any:
        return _split_csv(v)

    @field_validator("model_aliases", mode="before")
    @classmethod
    def _aliases(cls, v: Any) -> Any:
        return _json_or_pairs(v)

    @field_validator("model_fallbacks", "jwt_scope_routes", mode="before")
    @classmethod
    def _fallbacks(cls, v: Any) -> Any:
        v = _json_or_pairs(v)
        if isinstance(v, dict):
            return {k: _split_csv(t) if isinstance(t, str) else t for k, t in v.items()}
        return v

    @field_validator(
        "openai_api_key",
        "openai_base_url",
        "openai_organization",
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "aws_profile",
        "aws_endpoint_url_bedrock_runtime",
        "aws_endpoint_url_sagemaker_runtime",
        "database_url",
        "key_hash_secret",
        "redis_url",
        "record_retention_days",
        "jwt_issuer",
        "jwt_audience",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, v: Any) -> Any:
        # ``AWS_SECRET_ACCESS_KEY=`` (an uncommented sample line, a pass-through of an unset variable)
        # means "not set", not "set to the empty string".
        return None if isinstance(v, str) and not v.strip() else v

    @model_validator(mode="after")
    def _aws_key_pair(self) -> Settings:
        if (self.aws_access_key_id is None) != (self.aws_secret_access_key is None):
            raise ValueError("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together")
        return self

    # --- derived --------------------------------------------------------------------------------
    @property
    def api_keys(self) -> list[str]:
        return [k.get_secret_value() for k in self.aiproxy_api_key if k.get_secret_value()]

    @property
    def has_openai(self) -> bool:
        return bool(self.openai_api_key and self.openai_api_key.get_secret_value())

    @property
    def has_aws(self) -> bool:
        """True when AWS credentials are configured or visible to boto3 without a network lookup."""
        if self.aws_access_key_id or self.aws_profile or self.aws_endpoint_url_bedrock_runtime:
            return True
        env = os.environ
        if any(
            env.get(k)
            for k in (
                "AWS_ACCESS_KEY_ID",
                "AWS_PROFILE",
                "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",  # ECS task role
                "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                "AWS_WEB_IDENTITY_TOKEN_FILE",
            )
        ):
            return True
        home = Path(env.get("HOME", "~")).expanduser()
        return (home / ".aws" / "credentials").is_file() or (home / ".aws" / "config").is_file()

    @property
    def effective_database_url(self) -> str:
        """``DATABASE_URL``, else the embedded SQLite file under ``DATA_DIR``."""
        return self.database_url or f"sqlite:///{self.data_dir / 'aiproxy.db'}"

    @property
    def has_cloud(self) -> bool:
        return self.has_openai or self.has_aws


def config_file_path() -> Path:
    return Path(os.environ.get("AIPROXY_CONFIG_FILE", REPO_ROOT / "config.txt"))


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> Settings:
    """Build the settings; raise ``SettingsError`` naming every bad setting."""
    path = Path(config_file) if config_file is not None else config_file_path()
    env_file = str(path) if path.is_file() else None
    try:
        return Settings(_env_file=env_file, **overrides)  # type: ignore[call-arg]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = ".".join(str(p) for p in err["loc"]).upper()
            message = str(err["msg"]).removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                problems.append(f"{name}: unknown setting (in {path})")
            else:
                problems.append(f"{name}: {message}" if name else message)
        raise SettingsError("invalid settings: " + "; ".join(problems)) from None
    except (ValueError, json.JSONDecodeError) as exc:
        raise SettingsError(f"invalid settings: {exc}") from None
