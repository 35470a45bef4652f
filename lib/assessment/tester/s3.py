"""S3 access for datasets, experiments and releases (boto3; moto in tests).

Layout: ``s3://<bucket>/<prefix>/{datasets,experiments,releases}/<name>/<lesson>/...`` mirrored to
``<local root>/{datasets,experiments,releases}/<name>/<lesson>/...``.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from lib.errors import AIProxyError, AuthenticationError, InvalidRequestError, UpstreamUnavailableError
from lib.fileio import swap_folder


class S3Error(UpstreamUnavailableError):
    """S3 could not be reached or answered with an error."""


def _translate(exc: Exception, what: str) -> AIProxyError:
    from botocore.exceptions import ClientError, NoCredentialsError, PartialCredentialsError

    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return AuthenticationError(f"{what}: no AWS credentials (configure a profile or AWS_* variables)")
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"):
            return AuthenticationError(f"{what}: access denied ({code})")
        if code in ("NoSuchBucket", "404", "NoSuchKey"):
            return InvalidRequestError(f"{what}: not found ({code})")
        return S3Error(f"{what}: S3 error {code}")
    return S3Error(f"{what}: {type(exc).__name__}")


class S3Store:
    def __init__(self, bucket: str, prefix: str, client: Any = None, region: str | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._client = client
        self._region = region

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("s3", region_name=self._region)
        return self._client

    def key(self, rel: str) -> str:
        rel = rel.strip("/")
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def url(self, rel: str) -> str:
        return f"s3://{self.bucket}/{self.key(rel)}/"

    def _list(self, rel: str, delimiter: bool) -> tuple[list[str], list[str]]:
        base = self.key(rel) + "/"
        keys: list[str] = []
        folders: list[str] = []
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": base}
        if delimiter:
            kwargs["Delimiter"] = "/"
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(**kwargs):
                keys.extend(obj["Key"] for obj in page.get("Contents", []))
                folders.extend(p["Prefix"][len(base) :].strip("/") for p in page.get("CommonPrefixes", []))
        except Exception as exc:  # noqa: BLE001 - translated into the error taxonomy
            raise _translate(exc, f"listing {self.url(rel)}") from None
        return keys, folders

    def list_folders(self, rel: str) -> list[str]:
        return sorted(f for f in self._list(rel, True)[1] if f)

    def download_folder(self, rel: str, dest: Path) -> int:
        """Mirror ``<prefix>/<rel>/`` into ``dest`` (replacing it). Returns the number of files."""
        keys, _ = self._list(rel, False)
        files = [k for k in keys if not k.endswith("/")]
        if not files:
            raise InvalidRequestError(f"nothing found at {self.url(rel)}")
        base = self.key(rel) + "/"
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
        try:
            for key in files:
                relpath = key[len(base) :]
                target = (staging / relpath).resolve()
                if staging.resolve() not in target.parents:  # a key like "../x" must not escape
                    raise InvalidRequestError(f"refusing S3 key outside the folder: {key!r}")
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    self.client.download_file(self.bucket, key, str(target))
                except Exception as exc:  # noqa: BLE001
                    raise _translate(exc, f"downloading s3://{self.bucket}/{key}") from None
            swap_folder(staging, dest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return len(files)

    def upload_folder(self, src: Path, rel: str) -> int:
        count = 0
        for path in sorted(p for p in src.rglob("*") if p.is_file()):
            if path.name.startswith(".") and path.name.endswith(".tmp"):
                continue  # never upload a half-written temp file
            key = self.key(f"{rel}/{path.relative_to(src).as_posix()}")
            try:
                self.client.upload_file(str(path), self.bucket, key)
            except Exception as exc:  # noqa: BLE001
                raise _translate(exc, f"uploading {path}") from None
            count += 1
        return count
