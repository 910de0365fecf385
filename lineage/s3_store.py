"""The artifact store in an S3-compatible bucket: the one module that imports boto3.

See :mod:`lineage.storage` for the interface and the guarantees. Objects live under
``<prefix>/<key>``. Small objects go up in one ``PutObject``; a stream larger than one part goes up
as a multipart upload that is completed only after the last chunk, and aborted if producing a
chunk fails, so S3 never shows a partial object (and no orphaned parts are billed).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from lineage.errors import NotFound, NotInstalled, Unavailable
from lineage.storage import check_key

if TYPE_CHECKING:
    import pyarrow.fs

__all__ = ["PART_SIZE", "S3Store"]

PART_SIZE = 8 << 20
"""Multipart part size; S3 requires at least 5 MiB for every part but the last."""

_MISSING_BUCKET = {"NoSuchBucket"}
_DENIED = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "AllAccessDisabled",
    "403",
}
_MISSING_KEY = {"NoSuchKey", "404", "NotFound"}


class S3Store:
    """The artifact store in ``s3://bucket/prefix``.

    Args:
        bucket: The bucket; it must exist (Warden does not create buckets).
        prefix: A key prefix inside the bucket, without slashes at either end ("" for none).
        endpoint_url: The S3 API endpoint; ``None`` lets boto3 read ``AWS_ENDPOINT_URL`` or
            use AWS itself.
    """

    def __init__(self, *, bucket: str, prefix: str = "", endpoint_url: str | None = None) -> None:
        try:
            import boto3
            from botocore.config import Config
        except ImportError:  # pragma: no cover - the extra is installed in CI
            raise NotInstalled(
                "WARDEN_ARTIFACT_URL=s3://… needs the S3 client: pip install 'warden[s3]'"
            ) from None
        self.bucket = bucket
        self.prefix = prefix
        self._client: Any = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            config=Config(retries={"max_attempts": 3, "mode": "standard"}),
        )
        self._arrow: Any = None

    @property
    def url(self) -> str:
        """``s3://bucket/prefix`` (credentials are never part of it)."""
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    @contextmanager
    def _errors(self, key: str | None = None) -> Iterator[None]:
        """Translate the client's errors into Warden's taxonomy, naming what to fix."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in _MISSING_BUCKET or (key is None and code in _MISSING_KEY):
                raise Unavailable(
                    f"bucket {self.bucket!r} does not exist; create it or fix WARDEN_ARTIFACT_URL",
                    field="WARDEN_ARTIFACT_URL",
                ) from None
            if code in _DENIED:
                raise Unavailable(
                    f"the object store refused access to {self.url} ({code}); check the "
                    "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY of this process and the bucket "
                    "policy",
                    field="WARDEN_ARTIFACT_URL",
                ) from None
            if key is not None and code in _MISSING_KEY:
                raise NotFound(f"no stored object {key!r} in {self.url}") from None
            raise Unavailable(f"the object store {self.url} failed: {code}") from None
        except BotoCoreError as error:
            raise Unavailable(f"the object store {self.url} cannot be reached: {error}") from None

    def check(self) -> None:
        """Raise :class:`Unavailable` unless the bucket exists and these credentials may use it."""
        with self._errors():
            self._client.head_bucket(Bucket=self.bucket)

    def put(self, key: str, data: bytes, *, cached: bool = True) -> None:
        """Upload in one request; S3 shows the object only once it is complete (no cache)."""
        name = self._key(key)
        with self._errors(key):
            self._client.put_object(Bucket=self.bucket, Key=name, Body=data)

    def put_stream(self, key: str, chunks: Iterable[bytes]) -> int:
        """Upload in parts of :data:`PART_SIZE`, completing only after the last chunk."""
        name = self._key(key)
        buffer = bytearray()
        size = 0
        upload_id: str | None = None
        parts: list[dict[str, Any]] = []
        try:
            for chunk in chunks:
                buffer += chunk
                size += len(chunk)
                while len(buffer) >= PART_SIZE:
                    if upload_id is None:
                        with self._errors(key):
                            started = self._client.create_multipart_upload(
                                Bucket=self.bucket, Key=name
                            )
                        upload_id = str(started["UploadId"])
                    part, buffer = bytes(buffer[:PART_SIZE]), buffer[PART_SIZE:]
                    with self._errors(key):
                        answer = self._client.upload_part(
                            Bucket=self.bucket,
                            Key=name,
                            UploadId=upload_id,
                            PartNumber=len(parts) + 1,
                            Body=part,
                        )
                    parts.append({"ETag": answer["ETag"], "PartNumber": len(parts) + 1})
            if upload_id is None:
                self.put(key, bytes(buffer))
                return size
            with self._errors(key):
                if buffer:
                    answer = self._client.upload_part(
                        Bucket=self.bucket,
                        Key=name,
                        UploadId=upload_id,
                        PartNumber=len(parts) + 1,
                        Body=bytes(buffer),
                    )
                    parts.append({"ETag": answer["ETag"], "PartNumber": len(parts) + 1})
                self._client.complete_multipart_upload(
                    Bucket=self.bucket,
                    Key=name,
                    UploadId=upload_id,
                    MultipartUpload={"Parts": parts},
                )
            upload_id = None
        finally:
            if upload_id is not None:
                self._client.abort_multipart_upload(
                    Bucket=self.bucket, Key=name, UploadId=upload_id
                )
        return size

    def get(self, key: str) -> bytes:
        """Download the object, or raise :class:`NotFound`."""
        name = self._key(key)
        with self._errors(key):
            answer = self._client.get_object(Bucket=self.bucket, Key=name)
            return bytes(answer["Body"].read())

    def exists(self, key: str) -> bool:
        """Ask for the object's head."""
        try:
            with self._errors(key):
                self._client.head_object(Bucket=self.bucket, Key=self._key(key))
        except NotFound:
            return False
        return True

    def delete(self, key: str) -> None:
        """Delete the object (S3 does not mind a missing one)."""
        with self._errors(key):
            self._client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def list(self, prefix: str = "") -> list[str]:
        """Page through ``ListObjectsV2`` under the store's prefix."""
        start = f"{self.prefix}/" if self.prefix else ""
        keys: list[str] = []
        with self._errors():
            paginator = self._client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=start + prefix):
                keys.extend(item["Key"][len(start) :] for item in page.get("Contents", []))
        return sorted(keys)

    def arrow_filesystem(self) -> tuple[pyarrow.fs.FileSystem, str]:
        """Arrow's own S3 client, at boto3's endpoint and region, and ``bucket/prefix``.

        Credentials come from the same AWS variables (Arrow's SDK reads them the way boto3
        does); the client is built once, on first use.
        """
        if self._arrow is None:
            import pyarrow.fs

            meta = self._client.meta
            self._arrow = pyarrow.fs.S3FileSystem(
                endpoint_override=meta.endpoint_url,
                region=meta.region_name or "us-east-1",
                allow_bucket_creation=False,
                allow_bucket_deletion=False,
            )
        root = f"{self.bucket}/{self.prefix}" if self.prefix else self.bucket
        return self._arrow, root
