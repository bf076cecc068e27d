"""Fakes for the agent's collaborators: the Cloudflare queue, the edge, signed URLs, an engine.

Everything goes through one `httpx.MockTransport`, so the real clients are the code
under test and every request is recorded in order. Failures are injected per call kind
(`FakeCloud.script`) or for everything behind the edge (`FakeCloud.down_for`, an edge
restart); retry policies record their delays in `sleeps` instead of sleeping.
"""

from __future__ import annotations

import hashlib
import json
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from contracts import PulledMessage, Quality, QueueMessage, Stage
from contracts.media import MAX_AUDIO_BYTES
from gpu_agent.claimed_job import SHUTDOWN_MESSAGE, ClaimedJobFactory, ReportPacing
from gpu_agent.delivery import CLAIM_RETRY_DELAY_SECONDS, MessageDelivery
from gpu_agent.edge_client import EdgeClient
from gpu_agent.pipeline import Pipeline, PipelineLimits
from gpu_agent.probes import MediaProbes
from gpu_agent.queue_client import CloudflareQueueClient
from gpu_agent.retry import API_RETRY, TRANSFER_RETRY, RetryPolicy
from gpu_agent.settings import AgentSettings
from infinitetalk.engine import VideoRequest, VideoResult

CF_BASE = "http://cf.test/client/v4"
ACCOUNT = "acct"
QUEUE = "avatar-jobs"
CF_TOKEN = "cf-secret-token"
EDGE_URL = "http://edge.test"
AGENT_TOKEN = "agent-secret-token"
JOB_ID = "6f1c2d3e-0000-4000-8000-000000000001"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 64
VIDEO = b"\x00\x00\x00\x18ftypmp42" + b"v" * 300_000  # spans several upload chunks
SHUTDOWN_FAIL = {
    "claim_token": "claim-tok",
    "code": "AGENT_SHUTDOWN",
    "message": SHUTDOWN_MESSAGE,
    "retryable": True,
}

Reply = Callable[[httpx.Request, dict[str, Any]], httpx.Response]
# What a scripted call does: answer with this status or response, or raise this error.
Scripted = int | httpx.Response | type[httpx.TransportError]
# The heartbeat thread waits for real: keep its retry delays at milliseconds.
FAST_HEARTBEAT_RETRY = RetryPolicy(base_delay=0.001, max_delay=0.005, jitter=0.0)


def recorded(policy: RetryPolicy, sleeps: list[float]) -> RetryPolicy:
    """`policy` with its nominal delays (no jitter) appended to `sleeps` instead of slept."""
    return replace(policy, sleep=sleeps.append, rand=lambda: 0.0)


def r2_etag(data: bytes) -> str:
    """The ETag R2 (and S3) answers for an object stored in one PUT: its quoted MD5."""
    return f'"{hashlib.md5(data).hexdigest()}"'  # noqa: S324 - an ETag, not security


def envelope(status: int, code: str, message: str = "nope") -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message}})


def agent_settings(work_dir: Path, **extra: str) -> AgentSettings:
    """An agent's settings for the fakes here (the edge, the queue), working in `work_dir`."""
    return AgentSettings.from_env(
        {
            "EDGE_URL": EDGE_URL,
            "AGENT_TOKEN": AGENT_TOKEN,
            "CF_API_BASE": CF_BASE,
            "CF_ACCOUNT_ID": ACCOUNT,
            "CF_QUEUE_ID": QUEUE,
            "CF_API_TOKEN": CF_TOKEN,
            "WORK_DIR": str(work_dir),
            **extra,
        }
    )


def pulled(job_id: str = JOB_ID, lease_id: str = "lease-1", **overrides: Any) -> PulledMessage:
    body = QueueMessage(job_id=job_id, enqueued_at=datetime(2025, 1, 1, tzinfo=UTC))
    fields = {
        "id": f"msg-{lease_id}",
        "body": body.encode_for_pull(),
        "timestamp_ms": 1_735_689_600_000,
        "attempts": 1,
        "lease_id": lease_id,
        "metadata": {"CF-Content-Type": "json"},
    }
    fields.update(overrides)
    return PulledMessage.model_validate(fields)


def fail_body(cloud: FakeCloud) -> dict[str, Any]:
    """The one `/fail` body of a job that neither uploaded nor completed."""
    bodies = cloud.bodies("fail")
    assert len(bodies) == 1
    assert "complete" not in cloud.kinds() and "put" not in cloud.kinds()
    return bodies[0]


def shutdown_fail_only(cloud: FakeCloud) -> None:
    """The job was handed back for a shutdown, and not completed."""
    assert cloud.bodies("fail") == [SHUTDOWN_FAIL]
    assert "complete" not in cloud.kinds()


def interrupt_on(cloud: FakeCloud, delivery: MessageDelivery, when: Callable[[Call], bool]) -> None:
    """Interrupt `delivery` (the shutdown grace ran out) from inside the call `when` picks."""

    def on_call(call: Call) -> None:
        if when(call):
            delivery.interrupt()

    cloud.on_call = on_call


@dataclass
class Call:
    kind: str
    method: str
    url: str
    headers: httpx.Headers
    body: Any


@dataclass
class FakeCloud:
    """The queue API, the edge's /agent API and a blob store, recording every call."""

    heartbeat_interval: float = 15.0
    quality: str = "standard"
    messages: list[PulledMessage] = field(default_factory=list)
    blobs: dict[str, bytes] = field(
        default_factory=lambda: {"/inputs/image.png": PNG, "/blobs/audio.wav": WAV}
    )
    uploads: dict[str, bytes] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    replies: dict[str, Reply] = field(default_factory=dict)
    scripts: dict[str, list[Scripted]] = field(default_factory=dict)
    down_for: int = 0  # the next N calls to the edge or the queue find nobody listening
    on_call: Callable[[Call], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def script(self, kind: str, *answers: Scripted) -> None:
        """The next calls of `kind` get these answers, in order, before the normal reply."""
        with self.lock:
            self.scripts.setdefault(kind, []).extend(answers)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def client(self) -> httpx.Client:
        return httpx.Client(transport=self.transport())

    def kinds(self) -> list[str]:
        with self.lock:
            return [call.kind for call in self.calls]

    def bodies(self, kind: str) -> list[Any]:
        with self.lock:
            return [call.body for call in self.calls if call.kind == kind]

    def claim_body(self) -> dict[str, Any]:
        return {
            "job_id": JOB_ID,
            "claim_token": "claim-tok",
            "attempt": 1,
            "inputs": {
                "image_url": "http://blobs.test/inputs/image.png?X-Amz-Signature=img",
                "audio_url": "/blobs/audio.wav?sig=aud",  # relative: served by the edge
            },
            "output": {
                "upload_url": "http://blobs.test/videos/out.mp4?X-Amz-Signature=put",
                "key": f"videos/{JOB_ID}.mp4",
            },
            "prompt": "a person talking",
            "settings": {
                "resolution": "480p",
                "seed": 7,
                "quality": self.quality,
                "heartbeat_interval_seconds": self.heartbeat_interval,
            },
        }

    def handle(self, request: httpx.Request) -> httpx.Response:
        request.read()
        kind = self._kind(request)
        body: Any = request.content
        if request.method == "POST":
            body = json.loads(request.content)
        call = Call(kind, request.method, str(request.url), request.headers, body)
        with self.lock:
            self.calls.append(call)
            restarting = self.down_for > 0 and request.url.host in ("edge.test", "cf.test")
            if restarting:
                self.down_for -= 1
            scripted = self.scripts.get(kind, [])
            answer = scripted.pop(0) if scripted and not restarting else None
        if self.on_call is not None:
            self.on_call(call)
        if restarting:
            raise httpx.ConnectError("connection refused (edge restarting)", request=request)
        if isinstance(answer, int):
            return httpx.Response(answer, json={"success": False, "errors": []})
        if isinstance(answer, httpx.Response):
            return answer
        if answer is not None:
            raise answer("injected failure", request=request)
        if kind in self.replies:
            return self.replies[kind](request, body)
        return self._default(kind, request, body)

    def _kind(self, request: httpx.Request) -> str:
        path = request.url.path
        if request.url.host == "cf.test":
            return path.rsplit("/", 1)[-1]  # pull | ack
        if path == "/agent/heartbeat":
            return "heartbeat"
        if path.startswith("/agent/jobs/"):
            return path.rsplit("/", 1)[-1]  # claim | progress | complete | fail
        return "get" if request.method == "GET" else "put"

    def _default(self, kind: str, request: httpx.Request, body: Any) -> httpx.Response:
        if kind == "pull":
            with self.lock:
                batch = self.messages[:1]
                del self.messages[:1]
            result = {"messages": [m.model_dump() for m in batch], "message_backlog_count": 0}
            return httpx.Response(
                200, json={"success": True, "errors": [], "messages": [], "result": result}
            )
        if kind == "ack":
            result = {"ackCount": len(body["acks"]), "retryCount": len(body["retries"])}
            return httpx.Response(200, json={"success": True, "errors": [], "result": result})
        if kind == "claim":
            return httpx.Response(200, json=self.claim_body())
        if kind == "progress":
            return httpx.Response(200, json={"cancel_requested": False})
        if kind == "heartbeat":
            return httpx.Response(200, json={"drain": False})
        if kind in ("complete", "fail"):
            return httpx.Response(200, json={"ok": True})
        if kind == "get":
            data = self.blobs.get(request.url.path)
            if not data:
                return httpx.Response(404)
            return httpx.Response(200, content=data, headers={"ETag": r2_etag(data)})
        with self.lock:
            self.uploads[request.url.path] = request.content
        return httpx.Response(200)


class FakeEngine:
    """Writes a small file and reports a scripted progress; behaviour set per test."""

    name = "preview"

    def __init__(
        self,
        steps: list[tuple[float, Stage, float | None]] | None = None,
        *,
        error: BaseException | None = None,
        wait_for_cancel: float = 0.0,
        silent_for: float = 0.0,
        output: bytes = VIDEO,
        unavailable: dict[Quality, str] | None = None,
    ) -> None:
        self.steps = (
            steps
            if steps is not None
            else [
                (0.0, Stage.GENERATING, 10.0),
                (50.0, Stage.GENERATING, 5.0),
                (100.0, Stage.ENCODING, 0.0),
            ]
        )
        self.error = error
        self.wait_for_cancel = wait_for_cancel
        self.silent_for = silent_for
        self.output = output
        self.unavailable = unavailable or {}
        self.requests: list[VideoRequest] = []
        self.workdirs: list[Path] = []
        self.saw_cancel = False
        self.stopped_at: float | None = None  # time.monotonic() when it noticed the cancel

    def quality_unavailable(self, quality: Quality) -> str | None:
        return self.unavailable.get(quality)

    def generate(
        self,
        request: VideoRequest,
        workdir: Path,
        on_progress: Callable[[float, Stage, float | None], None],
        cancelled: Callable[[], bool],
    ) -> VideoResult:
        self.requests.append(request)
        self.workdirs.append(workdir)
        for percent, stage, eta in self.steps:
            on_progress(percent, stage, eta)
        if self.silent_for:
            time.sleep(self.silent_for)
        if self.wait_for_cancel:
            deadline = time.monotonic() + self.wait_for_cancel
            while not cancelled() and time.monotonic() < deadline:
                time.sleep(0.005)
            self.saw_cancel = cancelled()
            self.stopped_at = time.monotonic()
        if self.error is not None:
            raise self.error
        out = workdir / "out.mp4"
        out.write_bytes(self.output)
        return VideoResult(out, 2.0, 64, 48, self.name)


@dataclass
class FakeProbes:
    """Probe doubles that record what they saw; set an exception to make one refuse.

    `on_probe(kind, path)` runs first on every probe: a test's hook (raise, interrupt).
    """

    image_error: Exception | None = None
    audio_error: Exception | None = None
    video_error: Exception | None = None
    video: Any = field(
        default_factory=lambda: SimpleNamespace(duration_seconds=2.0, width=64, height=48)
    )
    on_probe: Callable[[str, Path], None] | None = None
    seen: list[tuple[str, Path]] = field(default_factory=list)
    prepared: Any = field(default_factory=object)
    """What the audio's pass returns: the engine's request should carry it."""
    prepared_in: list[Path] = field(default_factory=list)
    limits: list[float] = field(default_factory=list)
    """The limits the pipeline handed over: max_pixels, then max_seconds."""

    def probes(self) -> MediaProbes:
        return MediaProbes(
            lambda path, max_pixels: self._probe_image(path, max_pixels),
            lambda path, directory, max_seconds: self._prepare(path, directory, max_seconds),
            lambda path: self._probe("video", path, self.video_error, self.video),
        )

    def _probe_image(self, path: Path, max_pixels: int) -> Any:
        self.limits.append(max_pixels)
        return self._probe("image", path, self.image_error, object())

    def _prepare(self, path: Path, directory: Path, max_seconds: float) -> Any:
        self.limits.append(max_seconds)
        self.prepared_in.append(directory)
        return self._probe("audio", path, self.audio_error, self.prepared)

    def _probe(self, kind: str, path: Path, error: Exception | None, facts: Any) -> Any:
        self.seen.append((kind, path))
        if self.on_probe is not None:
            self.on_probe(kind, path)
        if error is not None:
            raise error
        return facts


@pytest.fixture
def fake_media(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """Stands in for `infinitetalk.media.probe` (PyAV/Pillow), where the real probes live,
    and for `infinitetalk.media.audio_pass`, the audio's one decode; it holds all three."""
    media = types.ModuleType("infinitetalk.media.probe")
    vars(media).update(
        probe_image=lambda path, max_pixels: None,
        prepare_audio=lambda path, directory, max_seconds: None,
        probe_video=lambda path: SimpleNamespace(duration_seconds=1.0, width=8, height=8),
    )
    import infinitetalk.media

    for name in ("probe", "audio_pass"):
        monkeypatch.setitem(sys.modules, f"infinitetalk.media.{name}", media)
        monkeypatch.setattr(infinitetalk.media, name, media, raising=False)
    return media


@pytest.fixture
def cloud() -> FakeCloud:
    return FakeCloud()


@pytest.fixture
def http(cloud: FakeCloud) -> Iterator[httpx.Client]:
    with cloud.client() as client:
        yield client


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def queue(http: httpx.Client, sleeps: list[float]) -> CloudflareQueueClient:
    return CloudflareQueueClient(
        http,
        api_base=CF_BASE,
        account_id=ACCOUNT,
        queue_id=QUEUE,
        api_token=CF_TOKEN,
        retry=recorded(API_RETRY, sleeps),
    )


@pytest.fixture
def edge(http: httpx.Client, sleeps: list[float]) -> EdgeClient:
    return EdgeClient(http, base_url=EDGE_URL, token=AGENT_TOKEN, retry=recorded(API_RETRY, sleeps))


@pytest.fixture
def fake_probes() -> FakeProbes:
    return FakeProbes()


@pytest.fixture
def work_dir(tmp_path: Path) -> Path:
    return tmp_path / "work"


@pytest.fixture
def make_delivery(
    queue: CloudflareQueueClient,
    edge: EdgeClient,
    http: httpx.Client,
    fake_probes: FakeProbes,
    work_dir: Path,
    sleeps: list[float],
) -> Callable[..., MessageDelivery]:
    """A delivery wired like the CLI's, over the fakes; `pacing` goes to `ReportPacing`."""

    def make(
        engine: Any | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        claim_retry_delay_seconds: int = CLAIM_RETRY_DELAY_SECONDS,
        max_audio_bytes: int = MAX_AUDIO_BYTES,
        **pacing: Any,
    ) -> MessageDelivery:
        pacing.setdefault("heartbeat_retry", FAST_HEARTBEAT_RETRY)
        pipeline = Pipeline(
            edge=edge,
            transfers=http,
            engine=engine or FakeEngine(),
            probes=fake_probes.probes(),
            limits=PipelineLimits(
                max_audio_bytes=max_audio_bytes, transfer_retry=recorded(TRANSFER_RETRY, sleeps)
            ),
        )
        jobs = ClaimedJobFactory(
            edge=edge,
            pipeline=pipeline,
            work_dir=work_dir,
            pacing=ReportPacing(**pacing),
            clock=clock,
        )
        return MessageDelivery(
            queue=queue,
            edge=edge,
            jobs=jobs,
            agent_id="agent-1",
            claim_retry_delay_seconds=claim_retry_delay_seconds,
        )

    return make
