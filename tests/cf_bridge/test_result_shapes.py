"""The Cloudflare adapters read every shape a binding result can take (see js_values), and
the edges of the binding APIs that the local bridge does not reach: R2 pagination, R2's
1000-key delete limit, and the options a queue message is sent with."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from contracts import QueueMessage, Resolution
from edge_worker.adapters.cloudflare import js_values
from edge_worker.adapters.cloudflare.d1_executor import D1Executor
from edge_worker.adapters.cloudflare.queue_producer import QueueProducer
from edge_worker.adapters.cloudflare.r2_blobs import R2BlobStore
from edge_worker.adapters.sql_job_store import SqlJobStore
from edge_worker.domain import jobs
from edge_worker.ports import BlobInfo
from tests.conftest import run


@dataclass
class JsProxyLike:
    """A result as Pyodide hands it over without the SDK's wrapper."""

    value: Any

    def to_py(self) -> Any:
        return self.value


class JsBuffer:
    def to_bytes(self) -> bytes:
        return b"from-a-js-buffer"


def test_to_py_converts_proxies_and_passes_python_values() -> None:
    assert js_values.to_py(JsProxyLike({"a": 1})) == {"a": 1}
    assert js_values.to_py({"a": 1}) == {"a": 1}
    assert js_values.to_py(None) is None


def test_js_null_reads_as_none(monkeypatch: pytest.MonkeyPatch) -> None:
    jsnull = object()
    monkeypatch.setattr(js_values, "_JSNULL", jsnull)
    assert js_values.to_py(jsnull) is None
    assert js_values.row(JsProxyLike({"seed": jsnull, "id": "j"})) == {"seed": None, "id": "j"}
    assert js_values.field({"cursor": jsnull}, "cursor") is None


def test_field_reads_dicts_objects_and_proxies() -> None:
    assert js_values.field({"size": 3}, "size") == 3
    assert js_values.field(SimpleNamespace(size=4), "size") == 4
    assert js_values.field(JsProxyLike({"meta": JsProxyLike({"changes": 1})}), "meta") == {
        "changes": 1
    }
    assert js_values.field({}, "size") is None
    assert js_values.field(SimpleNamespace(), "size") is None


def test_as_bytes_takes_memoryviews_and_js_buffers() -> None:
    assert js_values.as_bytes(memoryview(b"abc")) == b"abc"
    assert js_values.as_bytes(JsBuffer()) == b"from-a-js-buffer"


@dataclass
class UnwrappedD1:
    """A D1 binding whose results are raw proxies: the same store code must read them."""

    rows: list[dict[str, Any]]
    changes: int = 1

    def prepare(self, sql: str) -> "UnwrappedD1":
        return self

    def bind(self, *params: Any) -> "UnwrappedD1":
        return self

    async def all(self) -> JsProxyLike:
        return JsProxyLike({"results": [JsProxyLike(row) for row in self.rows]})

    async def first(self) -> JsProxyLike | None:
        return JsProxyLike(self.rows[0]) if self.rows else None

    async def run(self) -> JsProxyLike:
        return JsProxyLike({"success": True, "meta": {"changes": self.changes}})


def test_the_d1_executor_reads_unwrapped_results() -> None:
    job = jobs.new_job(
        job_id="j",
        owner="o",
        prompt="p",
        resolution=Resolution.P480,
        seed=None,
        image_key="i",
        audio_key="a",
        now=datetime.now(UTC),
    )

    def store(rows: list[dict[str, Any]], changes: int = 1) -> SqlJobStore:
        return SqlJobStore(D1Executor(UnwrappedD1(rows, changes)))

    assert run(store([{"ahead": 3}]).count_pending_before(job)) == 3
    assert run(store([], changes=2).purge_idempotency(datetime.now(UTC))) == 2
    assert run(store([]).get("missing")) is None


@dataclass
class RecordingBucket:
    """An R2 binding that pages its listing and records every call."""

    pages: list[dict[str, Any]] = field(default_factory=list)
    calls: list[tuple[str, Any]] = field(default_factory=list)

    async def list(self, **options: Any) -> dict[str, Any]:
        self.calls.append(("list", options))
        return self.pages[len([c for c in self.calls if c[0] == "list"]) - 1]

    async def delete(self, keys: Sequence[str]) -> None:
        self.calls.append(("delete", keys))

    async def head(self, key: str) -> SimpleNamespace:
        return SimpleNamespace(key=key, size=10, etag="0123abcd")

    async def get(self, key: str, **options: Any) -> None:
        self.calls.append(("get", options))
        return None


class NoPresigner:
    def presign_get(self, key: str, expires_at: datetime) -> str:
        return f"get:{key}@{expires_at.isoformat()}"

    def presign_put(self, key: str, expires_at: datetime, content_type: str) -> str:
        return f"put:{key}:{content_type}"


def test_list_keys_follows_the_cursor_across_pages() -> None:
    bucket = RecordingBucket(
        pages=[
            {"objects": [SimpleNamespace(key="v/2")], "truncated": True, "cursor": "c1"},
            {"objects": [SimpleNamespace(key="v/1")], "truncated": False},
        ]
    )
    assert run(R2BlobStore(bucket, NoPresigner()).list_keys("v/")) == ["v/1", "v/2"]
    assert bucket.calls == [("list", {"prefix": "v/"}), ("list", {"prefix": "v/", "cursor": "c1"})]


def test_delete_sends_at_most_1000_keys_per_call() -> None:
    bucket = RecordingBucket()
    keys = [f"k/{n}" for n in range(2500)]
    run(R2BlobStore(bucket, NoPresigner()).delete(keys))
    assert [len(batch) for _, batch in bucket.calls] == [1000, 1000, 500]
    assert [key for _, batch in bucket.calls for key in batch] == keys


def test_an_object_deleted_between_head_and_get_reads_as_missing() -> None:
    bucket = RecordingBucket()
    with pytest.raises(FileNotFoundError):
        run(R2BlobStore(bucket, NoPresigner()).read_range("gone", 4))
    assert bucket.calls == [("get", {"range": {"offset": 0, "length": 4}})]


def test_presigning_is_delegated() -> None:
    store = R2BlobStore(RecordingBucket(), NoPresigner())
    at = datetime(2026, 5, 1, tzinfo=UTC)
    assert store.presign_get("videos/1.mp4", at) == f"get:videos/1.mp4@{at.isoformat()}"
    assert store.presign_put("inputs/a.png", at, "image/png") == "put:inputs/a.png:image/png"
    assert run(store.head("x")) == BlobInfo("x", 10, '"0123abcd"')


@dataclass
class RecordingQueue:
    sent: list[tuple[Any, dict[str, Any]]] = field(default_factory=list)

    async def send(self, body: Any, **options: Any) -> None:
        self.sent.append((body, options))


def test_messages_go_as_json_with_a_delay_only_when_asked() -> None:
    queue = RecordingQueue()
    message = QueueMessage(job_id="j-1", enqueued_at=datetime(2026, 5, 1, tzinfo=UTC))
    run(QueueProducer(queue).send(message))
    run(QueueProducer(queue).send(message, delay_seconds=40))
    body = {"v": 1, "job_id": "j-1", "enqueued_at": "2026-05-01T00:00:00Z"}
    assert queue.sent == [
        (body, {"contentType": "json"}),
        (body, {"contentType": "json", "delaySeconds": 40}),
    ]
