"""Each port's adapters side by side: every contract test runs once per adapter.

`local` is the embedded stand-in (SQLite, a directory, the SQLite queue); `cloudflare` is
the Cloudflare adapter on real local D1, R2 and Queues behind the bridge Worker, which
starts on first use (and fails the run if wrangler cannot start); `s3` is the local
runtime's S3 blob store on moto's S3 server (tests/conftest.py `fake_r2`).
"""

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from contracts import QueueMessage
from edge_worker.adapters.cloudflare.d1_executor import D1Executor
from edge_worker.adapters.cloudflare.presign import R2Presigner, R2Settings
from edge_worker.adapters.cloudflare.queue_producer import QueueProducer
from edge_worker.adapters.cloudflare.r2_blobs import R2BlobStore
from edge_worker.adapters.local.fs_blobs import FsBlobStore
from edge_worker.adapters.local.s3_blobs import S3BlobStore, s3_client
from edge_worker.adapters.local.sqlite_executor import SqliteExecutor
from edge_worker.adapters.local.sqlite_queue import SqliteQueue
from edge_worker.adapters.sql_bucket_store import SqlBucketStore
from edge_worker.adapters.sql_job_store import SqlExecutor, SqlJobStore
from edge_worker.adapters.sql_key_store import SqlKeyStore
from edge_worker.adapters.sql_pool_store import SqlPoolStore
from edge_worker.clock import SystemClock
from edge_worker.ports import BlobStore, BucketStore, JobStore, KeyStore, PoolStore
from tests.cf_bridge.bridge import RunningBridge, reset_d1, shared_bridge
from tests.cf_bridge.proxies import D1Database, Queue, R2Bucket, received_messages
from tests.contracts_ports.queue_under_test import QueueUnderTest
from tests.edge_worker.cloudflare.fake_r2 import ACCESS_KEY_ID, SECRET_ACCESS_KEY, FakeR2

ADAPTERS = ["local", "cloudflare"]
R2 = R2Settings(
    account_id="contract-account",
    access_key_id="contract-access-key",
    secret_access_key="contract-secret-key",
    bucket_name="contract-bucket",
)


@pytest.fixture(scope="session")
def bridge() -> RunningBridge:
    return shared_bridge()


@pytest.fixture(params=ADAPTERS)
def sql_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlExecutor]:
    """A migrated, empty database: a SQLite file, or the bridge's local D1."""
    if request.param == "local":
        database = SqliteExecutor(tmp_path / "jobs.sqlite3")
        yield database
        database.close()
        return
    url = request.getfixturevalue("bridge").url
    reset_d1(url)
    yield D1Executor(D1Database(url))


@pytest.fixture
def job_store(sql_database: SqlExecutor) -> JobStore:
    return SqlJobStore(sql_database)


@pytest.fixture
def key_store(sql_database: SqlExecutor) -> KeyStore:
    return SqlKeyStore(sql_database)


@pytest.fixture
def bucket_store(sql_database: SqlExecutor) -> BucketStore:
    return SqlBucketStore(sql_database)


@pytest.fixture
def pool_store(sql_database: SqlExecutor) -> PoolStore:
    return SqlPoolStore(sql_database)


@pytest.fixture(params=[*ADAPTERS, "s3"])
def blob_store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return FsBlobStore(tmp_path / "blobs", "http://edge.test", "contract-secret", 1024)
    if request.param == "s3":
        s3: FakeR2 = request.getfixturevalue("fake_r2")
        client = s3_client(s3.endpoint, "auto", ACCESS_KEY_ID, SECRET_ACCESS_KEY)
        return S3BlobStore(client, s3.new_bucket(), SystemClock())
    url = request.getfixturevalue("bridge").url
    return R2BlobStore(R2Bucket(url), R2Presigner(R2, SystemClock()))


@pytest.fixture
def prefix() -> str:
    """A fresh key prefix per test: the bridge's bucket is shared by the whole session."""
    return f"contract-{uuid.uuid4().hex}/"


@pytest.fixture(params=ADAPTERS)
def queue_under_test(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[QueueUnderTest]:
    if request.param == "local":
        local = SqliteQueue(tmp_path / "queue.sqlite3")
        pulled: list[QueueMessage] = []

        def pull() -> list[QueueMessage]:
            pulled.extend(
                QueueMessage.decode_pulled(message) for message in local.pull(100).messages
            )
            return list(pulled)

        yield QueueUnderTest(local, pull)
        local.close()
        return
    url = request.getfixturevalue("bridge").url
    already = {message["id"] for message in received_messages(url)}

    def consumed() -> list[QueueMessage]:
        return [
            QueueMessage.model_validate(message["body"])
            for message in received_messages(url)
            if message["id"] not in already
        ]

    yield QueueUnderTest(QueueProducer(Queue(url)), consumed)
