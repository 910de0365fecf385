"""The artifact store: the same tests against the local directory and a real S3 API.

The S3 API is ``moto`` in server mode on 127.0.0.1 (:mod:`tests.s3`), spoken to over HTTP exactly
as an S3-compatible store would be; nothing is patched in process.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lineage.errors import InvalidInput, NotFound, Unavailable
from lineage.s3_store import PART_SIZE, S3Store
from lineage.storage import (
    PARTIAL_PREFIX,
    LocalStore,
    ObjectStore,
    open_store,
    read_parquet,
    write_parquet,
)
from tests.s3 import ACCESS_KEY, SECRET_KEY, create_bucket, moto_server

BUCKET = "warden-artifacts"


@pytest.fixture(autouse=True)
def _aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials and region from the usual variables, as a deployment would set them."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """One moto S3 server for the module, with the test bucket created."""
    with moto_server() as endpoint:
        create_bucket(endpoint, BUCKET)
        yield endpoint


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    """Each storage test runs on both implementations; S3 gets a fresh prefix per test."""
    if request.param == "local":
        return open_store(None, data_dir=tmp_path / "data")
    endpoint = request.getfixturevalue("s3_endpoint")
    return open_store(f"s3://{BUCKET}/{tmp_path.name}", data_dir=tmp_path, endpoint_url=endpoint)


def test_put_get_list_delete_round_trip(store: ObjectStore) -> None:
    store.check()
    store.put("reports/p1/renders/j1.html", b"<html>one</html>")
    store.put("reports/p1/renders/j2.pdf", b"%PDF two")
    store.put("baselines/d1/b1.json", b"{}")

    assert store.get("reports/p1/renders/j1.html") == b"<html>one</html>"
    assert store.exists("reports/p1/renders/j2.pdf")
    assert not store.exists("reports/p1/renders/j3.pdf")
    assert store.list("reports/") == ["reports/p1/renders/j1.html", "reports/p1/renders/j2.pdf"]
    assert store.list() == [
        "baselines/d1/b1.json",
        "reports/p1/renders/j1.html",
        "reports/p1/renders/j2.pdf",
    ]

    store.put("reports/p1/renders/j1.html", b"replaced")
    assert store.get("reports/p1/renders/j1.html") == b"replaced"

    store.delete("reports/p1/renders/j1.html")
    store.delete("reports/p1/renders/j1.html")  # deleting twice is fine
    assert not store.exists("reports/p1/renders/j1.html")
    with pytest.raises(NotFound, match=r"j1\.html"):
        store.get("reports/p1/renders/j1.html")


def test_an_object_put_out_of_the_cache_is_stored_whole(store: ObjectStore, tmp_path: Path) -> None:
    """``cached=False`` (an uploaded inference partition) stores the same bytes, atomically."""
    data = bytes(range(256)) * 4096  # 1 MiB
    store.put("inferences/p1/d1/inferences/b1.parquet", data, cached=False)
    store.put("inferences/p1/d1/inferences/b1.parquet", data[::-1], cached=False)

    assert store.get("inferences/p1/d1/inferences/b1.parquet") == data[::-1]
    assert store.list("inferences/") == ["inferences/p1/d1/inferences/b1.parquet"]
    assert not list(tmp_path.rglob(f"{PARTIAL_PREFIX}*"))


def test_streamed_upload_spans_several_parts(store: ObjectStore) -> None:
    block = bytes(range(256)) * (1 << 12)  # 1 MiB
    chunks = [block] * ((2 * PART_SIZE) // len(block) + 3)

    size = store.put_stream("inferences/d1/window.parquet", chunks)

    assert size == len(block) * len(chunks)
    assert store.get("inferences/d1/window.parquet") == b"".join(chunks)


@pytest.mark.parametrize("cut_after", [1, 2 * PART_SIZE // (1 << 20) + 1])
def test_interrupted_upload_leaves_nothing_visible(store: ObjectStore, cut_after: int) -> None:
    """Cut before the first part is sent, and after two parts went up: no object either way."""
    store.put("exports/e1.csv", b"previous,content\n")

    def chunks() -> Iterator[bytes]:
        for _ in range(cut_after):
            yield b"x" * (1 << 20)
        raise ConnectionResetError("the producer died mid-upload")

    with pytest.raises(ConnectionResetError):
        store.put_stream("exports/e1.csv", chunks())
    with pytest.raises(ConnectionResetError):
        store.put_stream("exports/e2.csv", chunks())

    assert store.get("exports/e1.csv") == b"previous,content\n"
    assert not store.exists("exports/e2.csv")
    assert store.list("exports/") == ["exports/e1.csv"]
    if isinstance(store, LocalStore):
        leftovers = [p.name for p in store.root.rglob("*") if p.name.startswith(PARTIAL_PREFIX)]
        assert leftovers == []
    else:
        assert isinstance(store, S3Store)
        uploads = store._client.list_multipart_uploads(Bucket=BUCKET)
        assert uploads.get("Uploads", []) == []  # aborted, no orphaned parts


def test_parquet_objects_are_read_in_place(store: ObjectStore) -> None:
    """Columnar reads go through the store's Arrow filesystem, with column and row filters."""
    import pyarrow as pa

    key = "inferences/p1/d1/inferences/b1.parquet"
    table = pa.table({"a": [1, 2, 3], "b": ["x", "y", "z"]})
    write_parquet(store, key, table)

    assert store.list("inferences/") == [key]
    assert read_parquet(store, key).equals(table)
    picked = read_parquet(store, key, columns=["b"], filters=[("a", ">=", 2)])
    assert picked.column_names == ["b"]
    assert picked.column("b").to_pylist() == ["y", "z"]
    filesystem, root = store.arrow_filesystem()
    assert filesystem.get_file_info(f"{root}/{key}").size == len(store.get(key))
    with pytest.raises(NotFound, match=r"b2\.parquet"):
        read_parquet(store, "inferences/p1/d1/inferences/b2.parquet")


@pytest.mark.parametrize(
    "key", ["", "/etc/passwd", "../escape", "a/../../b", "a//b", "a/./b", f"a/{PARTIAL_PREFIX}x"]
)
def test_keys_never_leave_the_store(store: ObjectStore, key: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        store.put(key, b"x")
    assert raised.value.field == "key"


def test_missing_bucket_names_the_setting(s3_endpoint: str, tmp_path: Path) -> None:
    store = open_store("s3://no-such-bucket/x", data_dir=tmp_path, endpoint_url=s3_endpoint)
    for action in (
        store.check,
        lambda: store.put("a.txt", b"x"),
        lambda: store.get("a.txt"),
        lambda: read_parquet(store, "a.parquet"),
    ):
        with pytest.raises(Unavailable, match="bucket 'no-such-bucket' does not exist") as raised:
            action()
        assert raised.value.field == "WARDEN_ARTIFACT_URL"
    assert not (tmp_path / "a.txt").exists()


def test_a_local_store_it_cannot_write_names_the_setting(tmp_path: Path) -> None:
    """Tests run as root, so the unwritable root is a path under a regular file."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    store = open_store((blocker / "artifacts").as_uri(), data_dir=tmp_path)
    with pytest.raises(Unavailable, match="cannot be written") as raised:
        store.check()
    assert raised.value.field == "WARDEN_ARTIFACT_URL"
    assert "WARDEN_ARTIFACT_URL" in raised.value.detail


@pytest.mark.slow
def test_denied_access_names_the_credentials(tmp_path: Path) -> None:
    """A server enforcing authentication refuses unknown keys: Unavailable, naming the fix."""
    with moto_server({"INITIAL_NO_AUTH_ACTION_COUNT": "0"}) as endpoint:
        store = open_store(f"s3://{BUCKET}/x", data_dir=tmp_path, endpoint_url=endpoint)
        for action in (
            store.check,
            lambda: store.put("a.txt", b"x"),
            lambda: read_parquet(store, "a.parquet"),
        ):
            with pytest.raises(Unavailable, match="refused access") as raised:
                action()
            assert "AWS_SECRET_ACCESS_KEY" in raised.value.detail
            assert SECRET_KEY not in raised.value.detail


@pytest.mark.parametrize(
    ("url", "message"),
    [("s3:///prefix", "names no bucket"), ("gs://bucket/x", "use file:// or s3://")],
)
def test_bad_artifact_url_names_the_setting(tmp_path: Path, url: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as raised:
        open_store(url, data_dir=tmp_path)
    assert raised.value.field == "WARDEN_ARTIFACT_URL"


def test_file_url_is_a_local_store(tmp_path: Path) -> None:
    store = open_store((tmp_path / "elsewhere").as_uri(), data_dir=tmp_path / "data")
    store.put("a/b.txt", b"x")
    assert (tmp_path / "elsewhere" / "a" / "b.txt").read_bytes() == b"x"
    assert store.url == (tmp_path / "elsewhere").as_uri()


def test_a_parquet_object_names_its_digest_and_dictionary_encodes_only_repeated_text(
    tmp_path: Path,
) -> None:
    """Numbers and unique ids are written plain (a dictionary of them is wasted work)."""
    import hashlib

    import pyarrow as pa
    import pyarrow.parquet as pq

    store = LocalStore(tmp_path)
    table = pa.table({"id": ["a", "b", "c"], "x": [0.5, 1.5, 0.5], "colour": ["r", "g", "r"]})
    digest = write_parquet(store, "t.parquet", table, unique=("id",))

    assert digest == hashlib.sha256(store.get("t.parquet")).hexdigest()
    columns = pq.ParquetFile(tmp_path / "t.parquet").metadata.row_group(0)
    dictionary = {
        columns.column(i).path_in_schema: columns.column(i).has_dictionary_page for i in range(3)
    }
    assert dictionary == {"id": False, "x": False, "colour": True}
    assert pq.read_table(tmp_path / "t.parquet").equals(table)
