"""The artifact store: one interface over the local data directory and an S3-compatible bucket.

Everything Warden keeps that is not configuration (rendered reports, baselines, inference logs,
exports) is an object under a key made of ids, such as ``reports/<project>/renders/<job>.pdf``.
Where the objects live is one setting, ``WARDEN_ARTIFACT_URL``:

* unset, or ``file:///path``: the local directory (by default the data directory), one file per
  key; a write goes to a hidden partial file first and is renamed into place, so a reader never
  sees half an object;
* ``s3://bucket/prefix``: a bucket of any S3-compatible store, through :mod:`lineage.s3_store`
  (the ``warden[s3]`` extra). Credentials, region and endpoint come from the usual AWS variables
  (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL``);
  Warden never stores them. S3 makes an object visible only when its upload completes, and an
  interrupted multipart upload is aborted, so the same guarantee holds there.

Both raise the same errors: :class:`~lineage.errors.NotFound` for a missing key,
:class:`~lineage.errors.Unavailable` when the store itself cannot be used (a missing bucket,
credentials the store refuses), naming the setting to fix.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import unquote, urlparse

from lineage.errors import InvalidInput, NotFound, Unavailable

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.fs
    import pyarrow.parquet as pq

__all__ = [
    "PARTIAL_PREFIX",
    "LocalStore",
    "ObjectStore",
    "check_key",
    "open_store",
    "parquet_metadata",
    "read_parquet",
    "read_parquet_columns",
    "write_parquet",
]

PARTIAL_PREFIX = ".partial-"
"""Name prefix of a local object still being written; never listed, never read."""


class ObjectStore(Protocol):
    """What Warden needs of an artifact store: whole objects under keys, written atomically."""

    @property
    def url(self) -> str:
        """Where the store is, for messages and ``warden doctor`` (never holds credentials)."""
        ...

    def check(self) -> None:
        """Raise :class:`~lineage.errors.Unavailable` unless the store can be read and written."""
        ...

    def put(self, key: str, data: bytes, *, cached: bool = True) -> None:
        """Store ``data`` under ``key``, replacing what was there; all or nothing.

        ``cached=False`` is a hint for write-once data read later, if at all (an uploaded
        inference partition): a local file's pages leave the OS page cache once durable. A
        bucket ignores it.
        """
        ...

    def put_stream(self, key: str, chunks: Iterable[bytes]) -> int:
        """Store the concatenated chunks under ``key``; return the size written.

        If iterating ``chunks`` raises, the exception propagates and ``key`` keeps its previous
        content (or stays absent): nothing half-written becomes visible.
        """
        ...

    def get(self, key: str) -> bytes:
        """Return the object under ``key``, or raise :class:`~lineage.errors.NotFound`."""
        ...

    def exists(self, key: str) -> bool:
        """Return whether an object is stored under ``key``."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object under ``key``; removing a missing object is not an error."""
        ...

    def list(self, prefix: str = "") -> list[str]:
        """Return the keys starting with ``prefix``, sorted."""
        ...

    def arrow_filesystem(self) -> tuple[pyarrow.fs.FileSystem, str]:
        """Return a pyarrow filesystem and the root under which ``key`` is ``f"{root}/{key}"``.

        Columnar readers (pyarrow's Parquet reader, Spark) read objects in place through it,
        column by column, instead of copying whole objects through Python bytes. Read only:
        writes go through :meth:`put` (what keeps them atomic).
        """
        ...


def check_key(key: str) -> str:
    """Return ``key`` if it is a relative POSIX path without ``..`` or empty parts, else raise.

    Keys are built from ids, but a store must still never write outside its root.
    """
    parts = key.split("/")
    if (
        not key
        or key.startswith("/")
        or "\\" in key
        or any(part in {"", ".", ".."} for part in parts)
        or any(part.startswith(PARTIAL_PREFIX) for part in parts)
    ):
        raise InvalidInput(
            f"object key {key!r} must be a relative path of non-empty parts without '.' or '..'",
            field="key",
        )
    return key


class LocalStore:
    """The artifact store as a local directory, one file per key."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._arrow: Any = None

    @property
    def url(self) -> str:
        """The directory as a ``file://`` URL."""
        return self.root.resolve().as_uri()

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*PurePosixPath(check_key(key)).parts)

    def check(self) -> None:
        """Create the directory if needed and prove it is writable with a throwaway object.

        Raises:
            Unavailable: The directory cannot be created or written (naming the setting).
        """
        probe = f"{PARTIAL_PREFIX}check-{uuid.uuid4().hex}"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            (self.root / probe).write_bytes(b"")
            (self.root / probe).unlink()
        except OSError as error:
            raise Unavailable(
                f"the artifact store {self.url} cannot be written ({error.strerror or error}); "
                "check WARDEN_ARTIFACT_URL (or WARDEN_DATA_DIR)",
                field="WARDEN_ARTIFACT_URL",
            ) from None

    def put(self, key: str, data: bytes, *, cached: bool = True) -> None:
        """Write a partial file next to the target, then rename it into place.

        ``cached=False`` drops the file's pages from the page cache once fsynced: growing the
        cache by a 12 MiB upload cost 20-35 ms of kernel time a write on the 2-core VM the
        benches run on (new pages), against 2-3 ms when the pages of the file before are
        dropped and reused; and write-once data need not push the store's hot pages out.
        """
        self.put_stream(key, [data], cached=cached)

    def put_stream(self, key: str, chunks: Iterable[bytes], *, cached: bool = True) -> int:
        """Write the chunks to a partial file, fsync it, rename it into place (see the protocol).

        ``cached=False``: see :meth:`put`.
        """
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f"{PARTIAL_PREFIX}{uuid.uuid4().hex}-{path.name}")
        size = 0
        try:
            with partial.open("wb") as handle:
                for chunk in chunks:
                    handle.write(chunk)
                    size += len(chunk)
                handle.flush()
                os.fsync(handle.fileno())
                if not cached and hasattr(os, "posix_fadvise"):  # clean once fsynced: dropped
                    os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
            os.replace(partial, path)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return size

    def get(self, key: str) -> bytes:
        """Read the file, or raise :class:`NotFound`."""
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFound(f"no stored object {key!r} in {self.url}") from None

    def exists(self, key: str) -> bool:
        """Return whether the file exists."""
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        """Remove the file if present."""
        self._path(key).unlink(missing_ok=True)

    def list(self, prefix: str = "") -> list[str]:
        """Walk the directory; partial files are not objects yet and are left out."""
        if not self.root.is_dir():
            return []
        keys = []
        for path in self.root.rglob("*"):
            if path.is_file() and not path.name.startswith(PARTIAL_PREFIX):
                key = path.relative_to(self.root).as_posix()
                if key.startswith(prefix):
                    keys.append(key)
        return sorted(keys)

    def arrow_filesystem(self) -> tuple[pyarrow.fs.FileSystem, str]:
        """The local filesystem and the directory's absolute path."""
        if self._arrow is None:
            import pyarrow.fs

            self._arrow = pyarrow.fs.LocalFileSystem()
        return self._arrow, self.root.absolute().as_posix()


def read_parquet(
    store: ObjectStore,
    key: str,
    *,
    columns: list[str] | None = None,
    filters: list[tuple[str, str, Any]] | None = None,
) -> pa.Table:
    """Read a Parquet object columnar, in place (see :meth:`ObjectStore.arrow_filesystem`).

    Raises:
        NotFound: No object under ``key``.
        Unavailable: The store cannot be used (a missing bucket, refused credentials).
    """
    import pyarrow.parquet as pq

    filesystem, root = store.arrow_filesystem()
    with _reading(store, key):
        return pq.read_table(
            f"{root}/{check_key(key)}", filesystem=filesystem, columns=columns, filters=filters
        )


def parquet_metadata(store: ObjectStore, key: str) -> pq.FileMetaData:
    """Read a Parquet object's footer alone: its columns and row count, no value.

    Raises:
        NotFound: No object under ``key``.
        Unavailable: The store cannot be used (a missing bucket, refused credentials).
    """
    import pyarrow.parquet as pq

    filesystem, root = store.arrow_filesystem()
    with _reading(store, key), filesystem.open_input_file(f"{root}/{check_key(key)}") as handle:
        return pq.read_metadata(handle)


def read_parquet_columns(
    store: ObjectStore,
    key: str,
    *,
    columns: list[str],
    metadata: pq.FileMetaData,
    dictionary: list[str] | None = None,
) -> pa.Table:
    """Read ``columns`` of a Parquet object whose footer was read (:func:`parquet_metadata`).

    The footer is not read again, and no dataset is set up: of many small objects (a window's
    partitions) that is a third of :func:`read_parquet`'s time. ``dictionary`` columns come
    dictionary-encoded, as Parquet keeps text, never decoded.

    Raises:
        NotFound: No object under ``key``.
        Unavailable: The store cannot be used (a missing bucket, refused credentials).
    """
    import pyarrow.parquet as pq

    filesystem, root = store.arrow_filesystem()
    with _reading(store, key), filesystem.open_input_file(f"{root}/{check_key(key)}") as handle:
        source = pq.ParquetFile(handle, metadata=metadata, read_dictionary=dictionary or None)
        return source.read(columns=columns)


@contextmanager
def _reading(store: ObjectStore, key: str) -> Iterator[None]:
    """Name a missing object, or the store's setting when Arrow fails reading one."""
    try:
        yield
    except FileNotFoundError:
        store.check()  # a missing bucket also reads as a missing file: name the setting
        raise NotFound(f"no stored object {key!r} in {store.url}") from None
    except OSError as error:
        store.check()  # Arrow's errors are text: let the store name a missing bucket or denial
        raise Unavailable(
            f"the object store {store.url} failed reading {key!r} ({error})",
            field="WARDEN_ARTIFACT_URL",
        ) from None


def write_parquet(
    store: ObjectStore, key: str, table: pa.Table, *, unique: Collection[str] = ()
) -> str:
    """Store ``table`` as one Parquet object, all or nothing; return the object's SHA-256 (hex).

    Only text columns are dictionary-encoded, and not those named in ``unique`` (ids): Parquet
    writers try a dictionary on every column by default and give it up page by page for
    values that rarely repeat, which was three quarters of writing 100,000 inference rows.
    The object goes up whole via :meth:`ObjectStore.put`; its digest lets an audit entry name
    exactly the bytes stored.
    """
    import hashlib

    import pyarrow as pa
    import pyarrow.parquet as pq

    text = [
        field.name
        for field in table.schema
        if field.name not in unique
        and (
            pa.types.is_string(field.type)
            or pa.types.is_large_string(field.type)
            or pa.types.is_dictionary(field.type)
        )
    ]
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, use_dictionary=text)
    data = sink.getvalue().to_pybytes()
    store.put(key, data)
    return hashlib.sha256(data).hexdigest()


def open_store(url: str | None, *, data_dir: Path, endpoint_url: str | None = None) -> ObjectStore:
    """Return the store ``url`` names: ``None`` for ``data_dir``, ``file://``, or ``s3://``.

    Raises:
        InvalidInput: Another scheme, or an ``s3://`` URL without a bucket.
        NotInstalled: ``s3://`` without the ``warden[s3]`` extra.
    """
    if not url:
        return LocalStore(data_dir)
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return LocalStore(Path(unquote(parsed.path)))
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise InvalidInput(
                f"WARDEN_ARTIFACT_URL {url!r} names no bucket; use s3://bucket/prefix",
                field="WARDEN_ARTIFACT_URL",
            )
        from lineage.s3_store import S3Store

        return S3Store(
            bucket=parsed.netloc, prefix=parsed.path.strip("/"), endpoint_url=endpoint_url
        )
    raise InvalidInput(
        f"WARDEN_ARTIFACT_URL {url!r} has scheme {parsed.scheme!r}; use file:// or s3://",
        field="WARDEN_ARTIFACT_URL",
    )
